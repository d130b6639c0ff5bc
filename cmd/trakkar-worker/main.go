// Command trakkar-worker is the entrypoint of a task container: it runs the
// job's agent CLI and reports through stdout, the result file and its exit code.
// As the container's pid 1 it is also the container's init (see worker.Init).
// `trakkar-worker egress-proxy …` instead runs the allowlisting proxy that is a
// task's only way out under --network allowlist, so no extra image is needed;
// `trakkar-worker egress-forward … -- command` runs a command in a container
// with no network, its loopback proxy ports piped to the proxy's sockets.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/trakkar/trakkar-agent/internal/egress"
	"github.com/trakkar/trakkar-agent/internal/osthreads"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
	"github.com/trakkar/trakkar-agent/worker"
)

// spareThreads is more than the worker ever blocks in system calls at once
// (waiting for the agent, writing the container's stdout and stderr and the
// output files), and small beside the smallest --pids-limit (64).
const spareThreads = 8

func main() {
	if len(os.Args) > 1 && os.Args[1] == "egress-proxy" {
		// The proxy runs in a container of its own, which the agent never enters.
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		code := egress.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// Before anything else: the agent must never reach this process's stdout.
	// egress-forward holds the container's stdout too (the worker is its child).
	if err := worker.Protect(); err != nil {
		fmt.Fprintln(os.Stderr, "trakkar-worker: "+err.Error())
		os.Exit(workerproto.ExitUsage)
	}
	// The agent shares the container's pids limit and may fill it; a Go
	// process that then needs a new thread aborts, and with it the run's
	// result. Init, egress-forward and the worker each keep spare threads.
	osthreads.Reserve(spareThreads)
	if os.Getpid() == 1 {
		os.Exit(worker.Init(os.Args))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	var code int
	if len(os.Args) > 1 && os.Args[1] == "egress-forward" {
		code = egress.ForwardMain(ctx, os.Args[2:], os.Stdout, os.Stderr)
	} else {
		code = worker.Run(ctx, worker.Config{
			Stdout: os.Stdout,
			Stderr: os.Stderr,
			Env:    os.Environ(),
		})
	}
	stop()
	os.Exit(code)
}

// Command trakkar-worker is the entrypoint of a task container: it runs the
// job's agent CLI and reports through stdout, the result file and its exit code.
// `trakkar-worker egress-proxy …` instead runs the allowlisting proxy that is a
// task's only way out under --network allowlist, so no extra image is needed;
// `trakkar-worker egress-forward … -- command` runs a command in a container
// with no network, its loopback proxy ports piped to the proxy's sockets.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trakkar/trakkar-agent/internal/egress"
	"github.com/trakkar/trakkar-agent/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	var code int
	switch {
	case len(os.Args) > 1 && os.Args[1] == "egress-proxy":
		code = egress.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "egress-forward":
		code = egress.ForwardMain(ctx, os.Args[2:], os.Stdout, os.Stderr)
	default:
		code = worker.Run(ctx, worker.Config{
			Stdout: os.Stdout,
			Stderr: os.Stderr,
			Env:    os.Environ(),
		})
	}
	stop()
	os.Exit(code)
}

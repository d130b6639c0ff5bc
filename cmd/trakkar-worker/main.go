// Command trakkar-worker is the entrypoint of a task container: it runs the
// job's agent CLI and reports through stdout, the result file and its exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trakkar/trakkar-agent/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := worker.Run(ctx, worker.Config{
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Env:    os.Environ(),
	})
	stop()
	os.Exit(code)
}

// Command claude is a fake of the Claude Code CLI for tests (see package fakeagent).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/trakkar/trakkar-agent/internal/fakeagent"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	dir, err := os.Getwd()
	if err == nil {
		// Like getcwd(3): the real path, not $PWD.
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: cannot determine the working directory:", err)
		os.Exit(1)
	}
	os.Exit(fakeagent.Claude(fakeagent.Env{
		Args:    os.Args[1:],
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Environ: os.Environ(),
		Dir:     dir,
		UID:     os.Getuid(),
		Signals: sigs,
	}))
}

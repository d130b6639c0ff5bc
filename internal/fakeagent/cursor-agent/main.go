// Command cursor-agent is a fake of Cursor's cursor-agent CLI for tests (see
// package fakeagent).
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
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: cannot determine the working directory:", err)
		os.Exit(1)
	}
	os.Exit(fakeagent.Cursor(fakeagent.Env{
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

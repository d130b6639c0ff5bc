package fakeagent

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Env is everything the fake takes from its process, injectable for tests.
type Env struct {
	Args    []string // command-line arguments without argv[0]
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string
	Dir     string // absolute working directory
	UID     int
	// Signals delivers SIGTERM/SIGINT; nil means none ever arrive.
	Signals <-chan os.Signal
	Now     func() time.Time
}

func (e Env) getenv(key string) string {
	val := ""
	for _, kv := range e.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val = v
		}
	}
	return val
}

// Main runs cli (Claude or Cursor) on this process's Env and exits with its
// code; it is the whole main of the fake binaries.
func Main(cli func(Env) int) {
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
	os.Exit(cli(Env{
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

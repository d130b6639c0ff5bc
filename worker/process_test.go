package worker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A background process that inherits stdout must not keep the worker waiting
// after the CLI itself exited.
func TestRunCLIDoesNotHangOnInheritedStdout(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Fatalf("this test needs %s: %v", sh, err)
	}
	var lines []string
	start := time.Now()
	exit, stopped, err := runCLI(context.Background(), cliSpec{
		Path: sh, Args: []string{"sh", "-c", "sleep 30 & echo first; echo oops >&2; exit 7"},
		Dir: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}, KillAfter: time.Second,
	}, func(b []byte) { lines = append(lines, string(b)) }, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	// Far below the background child's 30 s, with slack for a loaded host.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("runCLI took %v", d)
	}
	if stopped || exit.Code != 7 || exit.StderrTail != "oops" || strings.Join(lines, ",") != "first" {
		t.Errorf("stopped %v exit %+v lines %q", stopped, exit, lines)
	}
}

func TestRunCLIStartError(t *testing.T) {
	_, _, err := runCLI(context.Background(), cliSpec{Path: "/nonexistent/claude", Args: []string{"claude"}, Dir: t.TempDir()},
		func([]byte) {}, func(int) {})
	if err == nil {
		t.Fatal("starting a missing binary succeeded")
	}
}

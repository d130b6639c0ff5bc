package hostgit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// The checkout's git dir and common dir are asked of git once per Git, not at
// every stage of every run; a checkout that was not there yet is found later.
func TestCheckoutDirsAreAskedOnce(t *testing.T) {
	t.Parallel()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "calls")
	wrapper := filepath.Join(t.TempDir(), "git")
	writeExec(t, wrapper, "#!/bin/sh\necho \"$*\" >> '"+log+"'\nexec '"+real+"' \"$@\"\n")
	f := newFixture(t)
	g := newGit(t, func(o *hostgit.Options) { o.GitPath = wrapper })
	c := ctx(t)

	later := filepath.Join(t.TempDir(), "later")
	if err := os.Mkdir(later, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CommonDir(c, later); err == nil {
		t.Fatal("CommonDir of an empty folder succeeded")
	}
	rawGit(t, later, "init", "--quiet")
	if _, err := g.CommonDir(c, later); err != nil {
		t.Fatalf("CommonDir after git init: %v (a failure must not be kept)", err)
	}

	for range 3 {
		if _, err := g.RemoteURL(c, f.clone, "origin"); err != nil {
			t.Fatal(err)
		}
		if dir, err := g.CommonDir(c, f.clone); err != nil || dir != filepath.Join(f.clone, ".git") {
			t.Fatalf("CommonDir = %q, %v; want %s", dir, err, filepath.Join(f.clone, ".git"))
		}
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	count := func(flag string) int {
		n := 0
		for _, line := range strings.Split(string(calls), "\n") {
			if strings.Contains(line, "-C "+f.clone+" rev-parse") && strings.HasSuffix(line, flag) {
				n++
			}
		}
		return n
	}
	if n := count("--absolute-git-dir"); n != 1 {
		t.Errorf("git dir of the checkout asked %d times, want 1:\n%s", n, calls)
	}
	if n := count("--git-common-dir"); n != 1 {
		t.Errorf("common dir of the checkout asked %d times, want 1:\n%s", n, calls)
	}
}

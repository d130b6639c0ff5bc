package hostgit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitScratch(t *testing.T) {
	g, err := New(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	wt := t.TempDir()
	if err := os.WriteFile(filepath.Join(wt, "a.txt"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A planted pointer file must not steer the scratch repository anywhere.
	if err := os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: /nonexistent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gd := filepath.Join(t.TempDir(), "scratch")
	ctx := context.Background()
	if err := g.InitScratch(ctx, gd, wt, "trakkar/x-1"); err != nil {
		t.Fatal(err)
	}
	// What the agent would see inside its container.
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_DIR="+gd, "GIT_WORK_TREE="+wt, "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
		cmd.Dir = wt
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if s := git("status", "--porcelain"); s != "" {
		t.Fatalf("fresh scratch repository is not clean: %q", s)
	}
	for key, want := range map[string]string{
		"core.bare": "false", "core.checkStat": "minimal", "core.trustCtime": "false",
		"user.name": agentName, "user.email": agentEmail,
	} {
		if got := git("config", "--get", key); got != want {
			t.Errorf("scratch config %s = %q, want %q", key, got, want)
		}
	}
	if err := os.WriteFile(filepath.Join(wt, "a.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := git("status", "--porcelain"); s != "M a.txt" {
		t.Fatalf("status after an edit: %q", s)
	}
	if b := git("rev-parse", "--abbrev-ref", "HEAD"); b != "trakkar/x-1" {
		t.Fatalf("branch %q", b)
	}
	if n := git("rev-list", "--count", "HEAD"); n != "1" {
		t.Fatalf("history has %s commits; the user's history must not be there", n)
	}
	for _, bad := range []struct{ gd, wt string }{{"rel", wt}, {filepath.Join(wt, "inside"), wt}} {
		if err := g.InitScratch(ctx, bad.gd, bad.wt, "b"); err == nil {
			t.Errorf("InitScratch(%q, %q) accepted", bad.gd, bad.wt)
		}
	}
}

func TestRestorePointer(t *testing.T) {
	for _, plant := range []struct {
		name string
		do   func(p string) error
	}{
		{"rewritten file", func(p string) error { return os.WriteFile(p, []byte("gitdir: /evil\n"), 0o644) }},
		{"symlink", func(p string) error { os.Remove(p); return os.Symlink("/etc/passwd", p) }},
		{"directory", func(p string) error {
			os.Remove(p)
			return os.MkdirAll(filepath.Join(p, "hooks"), 0o755)
		}},
		{"untouched", func(string) error { return nil }},
	} {
		t.Run(plant.name, func(t *testing.T) {
			wt := Worktree{Path: t.TempDir(), GitDir: "/repo/.git/worktrees/task"}
			p := filepath.Join(wt.Path, ".git")
			if err := os.WriteFile(p, []byte("gitdir: /repo/.git/worktrees/task\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := plant.do(p); err != nil {
				t.Fatal(err)
			}
			if err := RestorePointer(wt); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(p)
			b, _ := os.ReadFile(p)
			if err != nil || !fi.Mode().IsRegular() || string(b) != "gitdir: /repo/.git/worktrees/task\n" {
				t.Fatalf("after restore: %v %v %q", fi, err, b)
			}
		})
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatalf("restoring a symlinked pointer touched its target: %v", err)
	}
}

package hostgit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// containerGit runs git as the agent would inside its container: the scratch
// repository as GIT_DIR, the worktree's files as the work tree.
func containerGit(t *testing.T, gd, wt string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(rawEnv(t), "GIT_DIR="+gd, "GIT_WORK_TREE="+wt)
	cmd.Dir = wt
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestScratchFromCheckoutMatchesAdd: the scratch repository built from the
// tree object has the HEAD tree the git add --all way gives, for files,
// symlinks, executable bits and nested folders, holds no other object of the
// user's repository, and its index carries the checkout's stat data.
func TestScratchFromCheckoutMatchesAdd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config []string // the user's repository config
	}{
		{"plain", nil},
		{"split index", []string{"core.splitIndex", "true"}},
		{"index v4 and untracked cache", []string{"feature.manyFiles", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, g, c := newRepo(t)
			writeFile(t, filepath.Join(f.clone, "deep", "er", "still", "x.txt"), "nested\n")
			writeExec(t, filepath.Join(f.clone, "bin", "run.sh"), "#!/bin/sh\necho hi\n")
			if err := os.Symlink("../deep/er/still/x.txt", filepath.Join(f.clone, "bin", "link")); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(f.clone, "empty"), "")
			rawGit(t, f.clone, "add", "-A")
			rawGit(t, f.clone, "commit", "--quiet", "-m", "more")
			rawGit(t, f.clone, "push", "--quiet", "origin", "main")
			// An object the agent must never get: on another branch only.
			writeFile(t, filepath.Join(f.clone, "secret.txt"), "other branch only\n")
			rawGit(t, f.clone, "checkout", "--quiet", "-b", "private")
			rawGit(t, f.clone, "add", "-A")
			rawGit(t, f.clone, "commit", "--quiet", "-m", "private")
			secret := rawGit(t, f.clone, "rev-parse", "HEAD:secret.txt")
			rawGit(t, f.clone, "checkout", "--quiet", "main")
			rawGit(t, f.clone, "fetch", "--quiet")
			if len(tc.config) > 0 {
				rawGit(t, f.clone, "config", tc.config[0], tc.config[1])
			}
			wt := addWorktree(c, t, g, f.clone, filepath.Join(t.TempDir(), "wt"), "trakkar/t-1")
			// Git keeps no stat data for files written in the second its index
			// is (racily clean); in a large checkout that is a few of the last
			// files. Here it would be all of them: let a second pass and
			// refresh, as if the checkout had been long.
			time.Sleep(1100 * time.Millisecond)
			rawGit(t, "/", "--git-dir="+wt.GitDir, "--work-tree="+wt.Path, "update-index", "-q", "--refresh")

			old := filepath.Join(t.TempDir(), "old")
			if err := g.InitScratch(c, old, wt.Path, wt.Branch); err != nil {
				t.Fatal(err)
			}
			gd := filepath.Join(t.TempDir(), "new")
			if err := g.ScratchFromCheckout(c, gd, wt); err != nil {
				t.Fatal(err)
			}
			want := rawGit(t, "/", "--git-dir="+old, "rev-parse", "HEAD^{tree}")
			if got := rawGit(t, "/", "--git-dir="+gd, "rev-parse", "HEAD^{tree}"); got != want {
				t.Fatalf("tree from the tree object %s, from git add %s", got, want)
			}
			if base := rawGit(t, f.clone, "rev-parse", "origin/main^{tree}"); want != base {
				t.Fatalf("git add's tree %s is not the base tree %s", want, base)
			}
			if b := containerGit(t, gd, wt.Path, "rev-parse", "--abbrev-ref", "HEAD"); b != wt.Branch {
				t.Fatalf("branch %q", b)
			}
			if n := containerGit(t, gd, wt.Path, "rev-list", "--count", "HEAD"); n != "1" {
				t.Fatalf("history has %s commits", n)
			}
			if _, err := os.Stat(filepath.Join(gd, "objects", "info", "alternates")); err == nil {
				t.Fatal("the scratch repository borrows objects through alternates")
			}
			if _, err := rawGitErr(t, "/", "--git-dir="+gd, "cat-file", "-e", secret); err == nil {
				t.Fatal("an object of another branch is in the scratch repository")
			}
			// The index carries the checkout's stat data, so the first status
			// trusts it and hashes nothing: a same-size rewrite with the old
			// mtime goes unseen. An index without stat data would hash the file
			// and see it.
			p := filepath.Join(wt.Path, "README.md")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("HELLO\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			if s := containerGit(t, gd, wt.Path, "status", "--porcelain"); s != "" {
				t.Fatalf("fresh scratch repository is not clean, or status rehashed a file whose stat data matched: %q", s)
			}
			// A real edit (another size) is seen, and diff works from the packed blobs.
			writeFile(t, filepath.Join(wt.Path, "src", "main.go"), "package main // edited\n")
			if s := containerGit(t, gd, wt.Path, "status", "--porcelain"); s != "M src/main.go" {
				t.Fatalf("status after an edit: %q", s)
			}
			if d := containerGit(t, gd, wt.Path, "diff", "--stat"); !strings.Contains(d, "src/main.go") {
				t.Fatalf("diff: %q", d)
			}
		})
	}
}

// TestScratchFromCheckoutRefusesAStaleIndex: an index that no longer holds
// HEAD's tree (someone staged in the worktree) is refused rather than shown to
// the agent as its starting point.
func TestScratchFromCheckoutRefusesAStaleIndex(t *testing.T) {
	_, g, c, wt := newWorktree(t, "trakkar/t-2", "")
	writeFile(t, filepath.Join(wt.Path, "new.txt"), "staged\n")
	rawGit(t, "/", "--git-dir="+wt.GitDir, "--work-tree="+wt.Path, "add", "new.txt")
	err := g.ScratchFromCheckout(c, filepath.Join(t.TempDir(), "s"), wt)
	if err == nil {
		t.Fatalf("stale index accepted: %v", err)
	}
	if err := g.ScratchFromCheckout(c, filepath.Join(t.TempDir(), "s"), hostgit.Worktree{Path: wt.Path, GitDir: wt.Path + "/x", Branch: "b"}); err == nil {
		t.Fatal("a made-up admin dir was accepted")
	}
}

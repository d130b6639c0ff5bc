package hostgit_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// TestAddWorktreeOwned: the files of a worktree checked out for the
// container's user are that user's from the start (no chown afterwards), the
// checkout is the base commit exactly (status clean, modes and symlinks
// kept), and the scratch repository can be built from its index. A user who
// cannot reach the repository gets a normal checkout, reported as not owned.
func TestAddWorktreeOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("checking out as another user needs root: the tests run as root (README, Test it)")
	}
	owner := hostgit.Owner{UID: 1000, GID: 1000}
	for _, reachable := range []bool{true, false} {
		name := map[bool]string{true: "reachable", false: "unreachable"}[reachable]
		t.Run(name, func(t *testing.T) {
			f, g, c := newRepo(t)
			writeExec(t, filepath.Join(f.clone, "bin", "run.sh"), "#!/bin/sh\n")
			if err := os.Symlink("run.sh", filepath.Join(f.clone, "bin", "link")); err != nil {
				t.Fatal(err)
			}
			rawGit(t, f.clone, "add", "-A")
			rawGit(t, f.clone, "commit", "--quiet", "-m", "modes")
			rawGit(t, f.clone, "push", "--quiet", "origin", "main")
			rawGit(t, f.clone, "fetch", "--quiet")
			// t.TempDir folders are private to root: open the way for the
			// container's user, or not.
			mode := os.FileMode(0o700)
			if reachable {
				mode = 0o755
			}
			for p := filepath.Dir(f.clone); p != filepath.Dir(p) && p != os.TempDir(); p = filepath.Dir(p) {
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(f.clone, ".trakkar-worktrees", "web-1")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			wt, owned, err := g.AddWorktreeOwned(c, f.clone, path, "trakkar/web-1", "origin/main", owner)
			if err != nil {
				t.Fatal(err)
			}
			if owned != reachable {
				t.Fatalf("owned %v, want %v", owned, reachable)
			}
			if s := rawGit(t, "/", "--git-dir="+wt.GitDir, "--work-tree="+wt.Path, "status", "--porcelain"); s != "" {
				t.Fatalf("checkout differs from the base: %q", s)
			}
			if fi, err := os.Stat(filepath.Join(wt.Path, "bin", "run.sh")); err != nil || fi.Mode()&0o111 == 0 {
				t.Fatalf("executable bit lost: %v %v", fi, err)
			}
			if l, err := os.Readlink(filepath.Join(wt.Path, "bin", "link")); err != nil || l != "run.sh" {
				t.Fatalf("symlink: %q %v", l, err)
			}
			want := uint32(0)
			if reachable {
				want = uint32(owner.UID)
			}
			n := 0
			err = filepath.WalkDir(wt.Path, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				var st syscall.Stat_t
				if err := syscall.Lstat(p, &st); err != nil {
					return err
				}
				n++
				if st.Uid != want {
					t.Errorf("%s owned by %d, want %d", p, st.Uid, want)
				}
				return nil
			})
			if err != nil || n < 5 {
				t.Fatalf("walked %d entries: %v", n, err)
			}
			// The admin dir stays this process's.
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(wt.GitDir, "index"), &st); err != nil || st.Uid != 0 {
				t.Fatalf("admin index owner %d: %v", st.Uid, err)
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".checkout-*")); len(m) > 0 {
				t.Fatalf("temporary checkout folder left: %v", m)
			}
			gd := filepath.Join(t.TempDir(), "scratch")
			if err := g.ScratchFromCheckout(c, gd, wt); err != nil {
				t.Fatal(err)
			}
		})
	}
}

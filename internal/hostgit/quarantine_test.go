package hostgit_test

import (
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/importpolicy"
	"github.com/trakkar/trakkar-agent/internal/testimage"
)

func randomFile(t *testing.T, path string, size int) string {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hasObject reports whether the user's repository holds the object.
func hasObject(t *testing.T, clone, id string) bool {
	t.Helper()
	_, err := rawGitErr(t, "/", "--git-dir="+filepath.Join(clone, ".git"), "cat-file", "-e", id)
	return err == nil
}

// A change the import policy refuses never reaches the user's object store:
// staging writes into a quarantine that Unstage throws away.
func TestRefusedChangeLeavesNoObjectInTheUserStore(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/quarantine", "")
	const limit = 256 << 10
	content := randomFile(t, filepath.Join(wt.Path, "big.bin"), 4*limit)
	id := rawGitStdin(t, filepath.Join(f.clone, ".git"), content, "hash-object", "--stdin") // no -w
	before := testimage.ObjectStoreBytes(t, f.clone)

	changes, err := g.StageAll(c, wt)
	if err != nil {
		t.Fatal(err)
	}
	rep := importpolicy.Check(changes, importpolicy.Options{MaxFileBytes: limit})
	if rep.Err() == nil {
		t.Fatalf("the big file was accepted: %+v", changes)
	}
	if err := g.Unstage(c, wt); err != nil {
		t.Fatal(err)
	}
	if hasObject(t, f.clone, id) {
		t.Errorf("the refused blob %s is in the user's object store", id)
	}
	if grew := testimage.ObjectStoreBytes(t, f.clone) - before; grew >= int64(len(content)) {
		t.Errorf("the object store grew by %d bytes for a refused %d-byte file", grew, len(content))
	}
	if ents, _ := os.ReadDir(wt.GitDir); slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return e.Name() == "trakkar-quarantine" }) {
		t.Error("the quarantine was left behind")
	}
	if out := rawGit(t, "/", "--git-dir="+wt.GitDir, "diff-index", "--cached", "--name-only", "HEAD"); out != "" {
		t.Errorf("index still differs from HEAD: %q", out)
	}
}

// An accepted change reaches the store whole, loose objects and packs alike (a
// file over core.bigFileThreshold is streamed into a pack).
func TestAcceptedChangeIsMigratedIntoTheUserStore(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/migrate", "")
	rawGit(t, f.clone, "config", "core.bigFileThreshold", "8k")
	small := "small change\n"
	writeFile(t, filepath.Join(wt.Path, "small.txt"), small)
	big := randomFile(t, filepath.Join(wt.Path, "big.bin"), 64<<10)
	gd := filepath.Join(f.clone, ".git")
	smallID := rawGitStdin(t, gd, small, "hash-object", "--stdin")
	bigID := rawGitStdin(t, gd, big, "hash-object", "--stdin")

	if _, err := g.StageAll(c, wt); err != nil {
		t.Fatal(err)
	}
	if hasObject(t, f.clone, smallID) || hasObject(t, f.clone, bigID) {
		t.Fatal("staging wrote into the user's object store before acceptance")
	}
	sha, err := g.CommitStaged(c, wt, "accepted")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{smallID, bigID, sha} {
		if !hasObject(t, f.clone, id) {
			t.Errorf("object %s missing after commit", id)
		}
	}
	rawGit(t, "/", "--git-dir="+gd, "fsck", "--connectivity-only", "--no-dangling")
	if got := rawGit(t, "/", "--git-dir="+gd, "cat-file", "-p", sha+":small.txt"); got != "small change" {
		t.Errorf("small.txt = %q", got)
	}
	if ents, _ := os.ReadDir(wt.GitDir); slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return e.Name() == "trakkar-quarantine" }) {
		t.Error("the quarantine was left behind")
	}
}

// A run that staged and then crashed leaves an index pointing into a quarantine
// the next StageAll replaces; the next commit must still be whole.
func TestStageAgainAfterAnAbandonedStage(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/abandoned", "")
	writeFile(t, filepath.Join(wt.Path, "a.txt"), "first\n")
	// An old mtime keeps the entry from being racily clean, so git trusts its stat
	// data and does not hash the file again.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(wt.Path, "a.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := g.StageAll(c, wt); err != nil {
		t.Fatal(err)
	}
	// No CommitStaged or Unstage: the supervisor died here.
	writeFile(t, filepath.Join(wt.Path, "b.txt"), "second\n")
	if _, err := g.StageAll(c, wt); err != nil {
		t.Fatal(err)
	}
	sha, err := g.CommitStaged(c, wt, "after a crash")
	if err != nil {
		t.Fatal(err)
	}
	gd := filepath.Join(f.clone, ".git")
	rawGit(t, "/", "--git-dir="+gd, "fsck", "--connectivity-only", "--no-dangling")
	if got := rawGit(t, "/", "--git-dir="+gd, "cat-file", "-p", sha+":a.txt"); got != "first" {
		t.Errorf("a.txt = %q", got)
	}
}

// A restart finds the index of an abandoned stage while the files have changed
// since (the runner hands the worktree to the container user and back, which
// changes their stat data; a follow-up may rewrite them): resetting the index
// must not compare it with the work tree.
func TestResetAfterTheFilesChangedSinceStaging(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"mode changed", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewritten", func(t *testing.T, p string) { writeFile(t, p, "rewritten\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, g, c, wt := newWorktree(t, "trakkar/changed-"+strings.ReplaceAll(tc.name, " ", "-"), "")
			p := filepath.Join(wt.Path, "a.txt")
			writeFile(t, p, "first\n")
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
			if _, err := g.StageAll(c, wt); err != nil {
				t.Fatal(err)
			}
			tc.change(t, p) // the supervisor died before committing; then this
			if err := g.Unstage(c, wt); err != nil {
				t.Fatalf("unstage after the files changed: %v", err)
			}
			if _, err := g.StageAll(c, wt); err != nil {
				t.Fatalf("stage again: %v", err)
			}
		})
	}
}

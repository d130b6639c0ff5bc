package supervisor_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// trashWatch is the real host git, noting whether Trakkar already had the
// run's completion when the worktree was taken away.
type trashWatch struct {
	*hostgit.Git
	e         *fakeEnv
	trashed   atomic.Int32
	completed atomic.Bool
}

func (g *trashWatch) TrashWorktree(ctx context.Context, repo string, wt hostgit.Worktree, dir string) (string, error) {
	g.trashed.Add(1)
	tv, ok := g.e.stand.TaskByKey("WEB-1")
	g.completed.Store(ok && len(tv.Runs) > 0 && tv.Runs[0].Completion != nil)
	return g.Git.TrashWorktree(ctx, repo, wt, dir)
}

// TestCompleteBeforeRemovingTheWorktree: a published run's completion is sent
// before its worktree goes, and the worktree is gone once Run returns.
func TestCompleteBeforeRemovingTheWorktree(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	e.task("WEB-1")
	hg, err := hostgit.New(hostgit.Options{StateDir: t.TempDir(), Logger: e.log.Named("git")})
	if err != nil {
		t.Fatal(err)
	}
	g := &trashWatch{Git: hg, e: e}
	sup, err := supervisor.New(e.config(nil), supervisor.Deps{API: e.api, Runtime: e.rt, Git: g, Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sup.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if rv := e.runOf("WEB-1"); rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("completion %+v", rv.Completion)
	}
	if g.trashed.Load() != 1 || !g.completed.Load() {
		t.Fatalf("worktree trashed %d times, completion sent before: %v", g.trashed.Load(), g.completed.Load())
	}
	root := supervisor.WorktreeRoot(e.repo)
	ents, _ := os.ReadDir(root)
	for _, d := range ents {
		if d.Name() != ".state" && d.Name() != ".trash" && !strings.HasPrefix(d.Name(), ".") {
			t.Errorf("left in the worktree folder: %s", d.Name())
		}
	}
	if left, _ := os.ReadDir(filepath.Join(root, ".trash")); len(left) > 0 {
		t.Errorf("trash not emptied by the time Run returned: %v", left)
	}
}

// TestStartFinishesAnInterruptedRemoval: a worktree whose removal a crash cut
// short (renamed into the trash, git's record not yet pruned) is finished by
// the next start: the trash is emptied and the branch is free again.
func TestStartFinishesAnInterruptedRemoval(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	root := supervisor.WorktreeRoot(e.repo)
	path := filepath.Join(root, "web-9")
	gitCmd(t, e.repo, "worktree", "add", "-q", "-b", "trakkar/web-9", path, "origin/main")
	if err := os.MkdirAll(filepath.Join(root, ".trash"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, filepath.Join(root, ".trash", "web-9-crashed")); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(nil)).wait(t)
	if left, _ := os.ReadDir(filepath.Join(root, ".trash")); len(left) > 0 {
		t.Fatalf("trash not emptied: %v", left)
	}
	out, err := exec.Command("git", "-C", e.repo, "worktree", "list", "--porcelain").CombinedOutput()
	if err != nil || strings.Contains(string(out), "web-9") {
		t.Fatalf("git still records the worktree: %s %v", out, err)
	}
	gitCmd(t, e.repo, "worktree", "add", "-q", path, "trakkar/web-9")
}

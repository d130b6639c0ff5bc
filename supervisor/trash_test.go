package supervisor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// trashRepo is a repository with one commit and a hardened git for it.
func trashRepo(t *testing.T) (string, *hostgit.Git) {
	t.Helper()
	repo := t.TempDir()
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main", repo},
		{"-C", repo, "-c", "user.name=T", "-c", "user.email=t@t.invalid", "commit", "--quiet", "--allow-empty", "-m", "init"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	g, err := hostgit.New(hostgit.Options{StateDir: t.TempDir(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return repo, g
}

// TestPruneFinishesInterruptedRemovals: a crash at any point of a worktree's
// removal (after the rename into the trash, before git's record is pruned;
// or midway through the deletion, with a folder the agent left read-only)
// leaves nothing Prune does not finish, and the task's branch can be checked
// out again.
func TestPruneFinishesInterruptedRemovals(t *testing.T) {
	t.Parallel()
	for _, crash := range []string{"after rename", "mid delete", "none", "mid checkout"} {
		t.Run(crash, func(t *testing.T) {
			ctx := context.Background()
			repo, g := trashRepo(t)
			root := WorktreeRoot(repo)
			path := filepath.Join(root, "web-1")
			wt, err := g.AddWorktree(ctx, repo, path, "trakkar/web-1", "main")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"a/b/c.txt", "a/d.txt", "ro/x.txt"} {
				p := filepath.Join(path, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(filepath.Join(path, "ro"), 0o500); err != nil {
				t.Fatal(err)
			}
			trash := trashDir(root)
			switch crash {
			case "after rename":
				// TrashWorktree's first step, then the crash: git still has the record.
				if err := os.MkdirAll(trash, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(path, filepath.Join(trash, "web-1-crashed")); err != nil {
					t.Fatal(err)
				}
				if out := gitOut(t, repo, "worktree", "list", "--porcelain"); !strings.Contains(out, "trakkar/web-1") {
					t.Fatalf("control: git lost the record without a prune: %s", out)
				}
			case "mid checkout":
				// A checkout as the container user died: its private index
				// folder is left beside the worktrees.
				left := filepath.Join(root, ".checkout-123")
				if err := os.MkdirAll(left, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(left, "index"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := g.TrashWorktree(ctx, repo, wt, trash); err != nil {
					t.Fatal(err)
				}
			case "mid delete", "none":
				moved, err := g.TrashWorktree(ctx, repo, wt, trash)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Lstat(path); !os.IsNotExist(err) {
					t.Fatalf("worktree folder still there: %v", err)
				}
				if crash == "mid delete" {
					if err := os.RemoveAll(filepath.Join(moved, "a")); err != nil {
						t.Fatal(err)
					}
				} else if err := hostgit.DeleteTrashed(moved); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Prune(ctx, repo, nil, g); err != nil {
				t.Fatal(err)
			}
			if ents, err := os.ReadDir(trash); err == nil && len(ents) > 0 {
				t.Fatalf("trash not emptied: %v", ents)
			}
			if left, _ := filepath.Glob(filepath.Join(root, ".checkout-*")); len(left) > 0 {
				t.Fatalf("leftover checkout folders: %v", left)
			}
			if out := gitOut(t, repo, "worktree", "list", "--porcelain"); strings.Contains(out, "web-1") {
				t.Fatalf("git still records the worktree: %s", out)
			}
			if _, err := g.AddWorktree(ctx, repo, path, "trakkar/web-1", "main"); err != nil {
				t.Fatalf("the branch is not free again: %v", err)
			}
		})
	}
}

// TestTrashWorktreeRefusesAnUnregisteredFolder: only git's own linked
// worktrees are ever moved.
func TestTrashWorktreeRefusesAnUnregisteredFolder(t *testing.T) {
	repo, g := trashRepo(t)
	dir := filepath.Join(WorktreeRoot(repo), "stray")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := g.TrashWorktree(context.Background(), repo, hostgit.Worktree{Path: dir}, trashDir(WorktreeRoot(repo))); err == nil {
		t.Fatal("an unregistered folder was moved")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the folder is gone: %v", err)
	}
}

func gitOut(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return string(out)
}

package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/sandbox"
)

// PruneRuntime is what pruning needs from the container runtime: containers,
// and the cache volumes of the tasks it removes.
type PruneRuntime interface {
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Remove(ctx context.Context, id string) error
	CacheRuntime
}

// PruneGit is what pruning needs from host git.
type PruneGit interface {
	OpenWorktree(ctx context.Context, repo, path string) (hostgit.Worktree, error)
	RemoveWorktree(ctx context.Context, repo string, wt hostgit.Worktree) error
	TrashGit
}

// pruneTrashGit keeps a nil PruneGit a nil TrashGit.
func pruneTrashGit(g PruneGit) TrashGit {
	if g == nil {
		return nil
	}
	return g
}

// PruneReport says what Prune removed and what it kept.
type PruneReport struct {
	Workspaces []string // task folders removed
	Kept       []string // task folders kept because their run is not finished
	Containers int      // exited task containers removed
	Volumes    int      // cache volumes of the removed tasks
}

// Prune removes the worktrees, state and exited containers of finished tasks
// in repo; only containers of runs recorded in repo are touched. Workspaces of unfinished runs (a run still working, or one a
// restarted supervisor will pick up) are kept.
func Prune(ctx context.Context, repo string, rt PruneRuntime, g PruneGit) (PruneReport, error) {
	var rep PruneReport
	root := WorktreeRoot(repo)
	// First what a crash cut short: a worktree half deleted in the trash.
	if err := cleanTrash(ctx, repo, pruneTrashGit(g)); err != nil {
		return rep, fmt.Errorf("finish interrupted worktree removals: %w", err)
	}
	states, err := os.ReadDir(filepath.Join(root, ".state"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("read state folder: %w", err)
	}
	// The engine is shared: only containers of this repository's runs, known
	// from their records, are looked at.
	records := map[string]runRecord{} // state folder → its record
	runKey := map[string]string{}     // run id → state folder
	for _, d := range states {
		if !d.IsDir() {
			continue
		}
		var rec runRecord
		if b, err := os.ReadFile(filepath.Join(root, ".state", d.Name(), recordFile)); err == nil && json.Unmarshal(b, &rec) == nil {
			records[d.Name()] = rec
			if rec.Claim.Run.ID != "" {
				runKey[rec.Claim.Run.ID] = d.Name()
			}
		}
	}
	running := map[string]bool{} // state folders with a live container
	if rt != nil {
		cs, err := rt.List(ctx, map[string]string{LabelManaged: "true"})
		if err != nil {
			return rep, fmt.Errorf("list task containers: %w", err)
		}
		for _, c := range cs {
			key, ours := runKey[c.Labels[LabelRunID]]
			// Another runner on the engine may hold another attempt of the
			// run: its containers are its own, for its recovery to read.
			if !ours || (records[key].RunnerID != "" && c.Labels[LabelRunner] != records[key].RunnerID) {
				continue
			}
			if c.State == "running" || c.State == "restarting" || c.State == "created" {
				running[key] = true
				continue
			}
			if err := rt.Remove(ctx, c.ID); err != nil {
				return rep, fmt.Errorf("remove container %s: %w", shortID(c.ID), err)
			}
			rep.Containers++
		}
	}
	var volErrs []error
	for _, d := range states {
		if !d.IsDir() {
			continue
		}
		key := d.Name()
		stateDir := filepath.Join(root, ".state", key)
		if rec, ok := records[key]; ok && (rec.Phase != phaseDone || running[key]) {
			rep.Kept = append(rep.Kept, key)
			continue
		}
		wtPath := filepath.Join(root, key)
		if _, err := os.Lstat(wtPath); err == nil {
			wt, err := g.OpenWorktree(ctx, repo, wtPath)
			if err != nil {
				return rep, fmt.Errorf("%s is not a worktree of this repository; remove it by hand: %w", wtPath, err)
			}
			if err := g.RemoveWorktree(ctx, repo, wt); err != nil {
				return rep, fmt.Errorf("remove worktree %s: %w", wtPath, err)
			}
		}
		if err := os.RemoveAll(stateDir); err != nil {
			return rep, fmt.Errorf("remove state of %s: %w", key, err)
		}
		if rt != nil {
			// A volume that will not go is reported; the other tasks still go.
			n, err := sandbox.PruneTaskCaches(ctx, rt, repo, key)
			rep.Volumes += n
			volErrs = append(volErrs, err)
		}
		rep.Workspaces = append(rep.Workspaces, key)
	}
	return rep, errors.Join(volErrs...)
}

// freeBytes is the space available to unprivileged writers on path's filesystem.
func freeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	for p := path; ; p = filepath.Dir(p) {
		if err := syscall.Statfs(p, &st); err == nil {
			return st.Bavail * uint64(st.Bsize), nil
		} else if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return 0, fmt.Errorf("free space of %s: %w", path, err)
		}
	}
}

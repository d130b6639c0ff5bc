package hostgit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// TrashWorktree takes a linked worktree out of repo quickly, for its files to
// be deleted later (EmptyTrash), off the repository's lock: the folder is
// renamed into trashDir, which must be on the same file system, and `worktree
// prune` drops git's record of it, freeing its branch. It returns where the
// files went ("" if the folder was already gone). Whatever a crash leaves
// between the two steps, PruneWorktrees and EmptyTrash finish. As for
// RemoveWorktree, only a folder git has registered as a linked worktree of
// repo is moved.
func (g *Git) TrashWorktree(ctx context.Context, repo string, wt Worktree, trashDir string) (string, error) {
	abs, err := absPath(wt.Path)
	if err != nil {
		return "", fmt.Errorf("trash worktree: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("trash worktree: %w", err)
	}
	common, err := g.commonDirOf(ctx, gd)
	if err != nil {
		return "", fmt.Errorf("trash worktree: %w", err)
	}
	admin, err := findAdminDir(common, abs)
	if err != nil {
		if _, statErr := os.Lstat(abs); errors.Is(statErr, os.ErrNotExist) {
			return "", g.pruneWorktrees(ctx, gd)
		}
		return "", fmt.Errorf("trash worktree: refusing to move %s: not a registered linked worktree of %s", abs, repo)
	}
	if err := os.MkdirAll(trashDir, 0o700); err != nil {
		return "", fmt.Errorf("trash worktree: %w", err)
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", fmt.Errorf("trash worktree: %w", err)
	}
	dest := filepath.Join(trashDir, filepath.Base(abs)+"-"+hex.EncodeToString(suffix[:]))
	if err := os.Rename(abs, dest); err != nil {
		return "", fmt.Errorf("trash worktree: %w", err)
	}
	// The worktree's .git file is gone from where git's record says: prune
	// drops the record.
	if err := g.pruneWorktrees(ctx, gd); err != nil {
		return dest, err
	}
	if _, err := os.Stat(admin); err == nil {
		return dest, fmt.Errorf("trash worktree: admin dir %s still present after prune", admin)
	}
	g.log.Info("worktree moved to the trash", zap.String("path", abs), zap.String("trash", dest))
	return dest, nil
}

// PruneWorktrees drops git's records of linked worktrees whose folders are
// gone, as a crash after TrashWorktree's rename can leave them.
func (g *Git) PruneWorktrees(ctx context.Context, repo string) error {
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return fmt.Errorf("prune worktrees: %w", err)
	}
	return g.pruneWorktrees(ctx, gd)
}

func (g *Git) pruneWorktrees(ctx context.Context, gd string) error {
	g.worktreesMu.Lock()
	defer g.worktreesMu.Unlock()
	if _, err := g.run(ctx, call{op: "worktree prune",
		args: []string{"--git-dir=" + gd, "worktree", "prune"}}); err != nil {
		return fmt.Errorf("prune worktrees: %w", err)
	}
	return nil
}

// EmptyTrash deletes everything in trashDir (a missing one is empty), also
// what a deletion cut short left, and folders the agent left without write
// permission. Symlinks are removed, never followed.
func EmptyTrash(trashDir string) error {
	ents, err := os.ReadDir(trashDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("empty trash: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if err := forceRemoveAll(filepath.Join(trashDir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("empty trash: %w", err)
	}
	return nil
}

// DeleteTrashed deletes one folder TrashWorktree moved into the trash.
func DeleteTrashed(path string) error {
	if err := forceRemoveAll(path); err != nil {
		return fmt.Errorf("delete trashed worktree: %w", err)
	}
	return nil
}

// checkoutPrefix names the private folders checkoutAs makes beside a worktree.
const checkoutPrefix = ".checkout-"

// TrashLeftoverCheckouts moves into trashDir the private checkout folders in
// root that a crash mid-checkout left behind. Call it only while no worktree
// is being added (at start, under the runner's lock).
func TrashLeftoverCheckouts(root, trashDir string) error {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trash leftover checkouts: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), checkoutPrefix) {
			continue
		}
		if err := os.MkdirAll(trashDir, 0o700); err != nil {
			return fmt.Errorf("trash leftover checkouts: %w", err)
		}
		if err := os.Rename(filepath.Join(root, e.Name()), filepath.Join(trashDir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("trash leftover checkouts: %w", err)
	}
	return nil
}

package hostgit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InitScratch makes a disposable repository at gitDir whose only commit is the
// current content of workTree, for the agent to run git status/diff/log (and
// commit) inside its container without ever seeing the user's .git. The host
// never reads it back: the change is computed from the files. Any previous
// scratch repository there is replaced.
func (g *Git) InitScratch(ctx context.Context, gitDir, workTree, branch string) error {
	if !filepath.IsAbs(gitDir) || !filepath.IsAbs(workTree) {
		return fmt.Errorf("scratch repository: paths must be absolute")
	}
	if strings.HasPrefix(filepath.Clean(gitDir)+"/", filepath.Clean(workTree)+"/") {
		return fmt.Errorf("scratch repository: %s is inside the work tree", gitDir)
	}
	if err := ValidateBranch(branch); err != nil {
		return fmt.Errorf("scratch repository: %w", err)
	}
	if err := os.RemoveAll(gitDir); err != nil {
		return fmt.Errorf("scratch repository: clear: %w", err)
	}
	gd := "--git-dir=" + gitDir
	wt := "--work-tree=" + workTree
	steps := []call{
		{op: "scratch init", args: []string{"init", "--quiet", "--bare", "--initial-branch=" + branch, "--", gitDir}},
		// A bare repository has no work tree by default; the container sets
		// GIT_WORK_TREE, and core.bare=false keeps status and diff working.
		{op: "scratch config", args: []string{gd, "config", "core.bare", "false"}},
		// So the agent can commit in its own repository if it wants to.
		{op: "scratch config", args: []string{gd, "config", "user.name", "Trakkar Agent"}},
		{op: "scratch config", args: []string{gd, "config", "user.email", "agent@trakkar.invalid"}},
		{op: "scratch add", args: []string{gd, wt, "add", "--all", "--", "."}},
		{op: "scratch commit", args: []string{gd, wt, "commit", "--quiet", "--no-verify", "--allow-empty",
			"-m", "Starting point of this task"}},
	}
	for _, c := range steps {
		if _, err := g.run(ctx, c); err != nil {
			return fmt.Errorf("scratch repository: %w", err)
		}
	}
	return nil
}

// RestorePointer rewrites the worktree's .git file to point at its real admin
// dir. The agent may have replaced it (with a pointer to a planted gitdir, a
// symlink or a directory); a person who later opens the kept workspace with a
// git-aware prompt would otherwise run what the agent planted. Nothing is
// followed: whatever is at .git is removed and the file written anew.
func RestorePointer(wt Worktree) error {
	if wt.Path == "" || wt.GitDir == "" {
		return fmt.Errorf("restore .git pointer: worktree not known")
	}
	p := filepath.Join(wt.Path, ".git")
	want := "gitdir: " + wt.GitDir + "\n"
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		if b, err := os.ReadFile(p); err == nil && string(b) == want {
			return nil
		}
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("restore .git pointer: %w", err)
	}
	if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
		return fmt.Errorf("restore .git pointer: %w", err)
	}
	return nil
}

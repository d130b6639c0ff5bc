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
	gd, err := g.newScratch(ctx, gitDir, workTree, branch)
	if err != nil {
		return err
	}
	wt := "--work-tree=" + workTree
	steps := []call{
		{op: "scratch add", args: []string{gd, wt, "add", "--all", "--", "."}},
		{op: "scratch commit", args: []string{gd, wt, "commit", "--quiet", "--no-verify", "--allow-empty",
			"-m", scratchMessage}},
	}
	for _, c := range steps {
		if _, err := g.run(ctx, c); err != nil {
			return fmt.Errorf("scratch repository: %w", err)
		}
	}
	return nil
}

const scratchMessage = "Starting point of this task"

// scratchConfig is added to a new scratch repository's config.
//   - core.bare=false: a bare repository has no work tree by default; the
//     container sets GIT_WORK_TREE, and this keeps status and diff working.
//   - checkStat/trustCtime: the index is written on the host and read in the
//     container, where owner, inode and device numbers may differ (another
//     uid, gVisor): compare only mtime and size, so status does not rehash
//     every file.
//   - user: so the agent can commit in its own repository if it wants to.
const scratchConfig = "[core]\n\tbare = false\n\tcheckStat = minimal\n\ttrustCtime = false\n" +
	"[user]\n\tname = " + agentName + "\n\temail = " + agentEmail + "\n"

// newScratch clears gitDir and makes the empty scratch repository there,
// returning its --git-dir argument.
func (g *Git) newScratch(ctx context.Context, gitDir, workTree, branch string) (string, error) {
	if !filepath.IsAbs(gitDir) || !filepath.IsAbs(workTree) {
		return "", fmt.Errorf("scratch repository: paths must be absolute")
	}
	if strings.HasPrefix(filepath.Clean(gitDir)+"/", filepath.Clean(workTree)+"/") {
		return "", fmt.Errorf("scratch repository: %s is inside the work tree", gitDir)
	}
	if err := ValidateBranch(branch); err != nil {
		return "", fmt.Errorf("scratch repository: %w", err)
	}
	if err := os.RemoveAll(gitDir); err != nil {
		return "", fmt.Errorf("scratch repository: clear: %w", err)
	}
	gd := "--git-dir=" + gitDir
	if _, err := g.run(ctx, call{op: "scratch init",
		args: []string{"init", "--quiet", "--bare", "--initial-branch=" + branch, "--", gitDir}}); err != nil {
		return "", fmt.Errorf("scratch repository: %w", err)
	}
	// Appended to the config init just wrote, where a later value wins: one
	// write instead of a git process per setting.
	f, err := os.OpenFile(filepath.Join(gitDir, "config"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return "", fmt.Errorf("scratch repository: config: %w", err)
	}
	_, err = f.WriteString(scratchConfig)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("scratch repository: config: %w", err)
	}
	return gd, nil
}

// ScratchFromCheckout is InitScratch for a worktree that holds exactly its
// HEAD, as AddWorktree leaves it: nothing is hashed again. The scratch
// repository gets its own pack of just HEAD's tree (no alternates, no other
// object of the user's repository), its one commit made with commit-tree, and
// a copy of the worktree's index, whose stat data is still true of the files.
// The caller vouches that no one has written to the worktree since the
// checkout; a tree that differs is only seen as changes in the agent's status.
func (g *Git) ScratchFromCheckout(ctx context.Context, gitDir string, wt Worktree) error {
	wtArgs, err := g.worktreeArgs(wt)
	if err != nil {
		return fmt.Errorf("scratch repository: %w", err)
	}
	tree, err := g.run(ctx, call{op: "rev-parse", readOnly: true,
		args: []string{wtArgs[0], "rev-parse", "--verify", "--quiet", "HEAD^{tree}"}})
	if err != nil {
		return fmt.Errorf("scratch repository: tree of HEAD: %w", err)
	}
	tree = strings.TrimSpace(tree)
	if !hexSHA.MatchString(tree) {
		return fmt.Errorf("scratch repository: unexpected tree id %q", tree)
	}
	gd, err := g.newScratch(ctx, gitDir, wt.Path, wt.Branch)
	if err != nil {
		return err
	}
	objects, err := g.run(ctx, call{op: "rev-list", readOnly: true,
		// Ids only: a path holding a newline could otherwise pass a line of
		// its own, naming any object of the user's repository, to pack-objects.
		args: []string{wtArgs[0], "rev-list", "--objects", "--no-object-names", "--end-of-options", tree}})
	if err != nil {
		return fmt.Errorf("scratch repository: list the tree's objects: %w", err)
	}
	// The pack is written from the user's object store straight into the
	// scratch one, with its index: existing compressed data is reused and no
	// object is hashed again. No delta search: the pack is thrown away.
	if _, err := g.run(ctx, call{op: "pack-objects", stdin: strings.NewReader(objects),
		args: []string{wtArgs[0], "-c", "pack.compression=1", "pack-objects", "--quiet", "--window=0",
			filepath.Join(gitDir, "objects", "pack", "pack")}}); err != nil {
		return fmt.Errorf("scratch repository: pack the tree: %w", err)
	}
	if err := copyIndex(wt.GitDir, gitDir); err != nil {
		return fmt.Errorf("scratch repository: %w", err)
	}
	// A split index, an untracked cache or fsmonitor data make sense only
	// beside the user's repository: write a plain index.
	steps := []call{
		{op: "scratch index", args: []string{gd, "-c", "core.splitIndex=false", "-c", "core.untrackedCache=false",
			"update-index", "--no-split-index", "--no-untracked-cache", "--no-fsmonitor"}},
	}
	for _, c := range steps {
		if _, err := g.run(ctx, c); err != nil {
			return fmt.Errorf("scratch repository: %w", err)
		}
	}
	// Unused once the index is whole again.
	if shared, _ := filepath.Glob(filepath.Join(gitDir, "sharedindex.*")); len(shared) > 0 {
		for _, p := range shared {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("scratch repository: %w", err)
			}
		}
	}
	// The index must be exactly the tree, or the agent's status would lie.
	got, err := g.run(ctx, call{op: "scratch write-tree", args: []string{gd, "write-tree"}})
	if err != nil {
		return fmt.Errorf("scratch repository: %w", err)
	}
	if got = strings.TrimSpace(got); got != tree {
		return fmt.Errorf("scratch repository: the worktree's index holds tree %s, not HEAD's %s", got, tree)
	}
	commit, err := g.run(ctx, call{op: "scratch commit-tree", args: []string{gd, "commit-tree", "-m", scratchMessage, tree}})
	if err != nil {
		return fmt.Errorf("scratch repository: %w", err)
	}
	commit = strings.TrimSpace(commit)
	if _, err := g.run(ctx, call{op: "scratch update-ref",
		args: []string{gd, "update-ref", "refs/heads/" + wt.Branch, commit}}); err != nil {
		return fmt.Errorf("scratch repository: %w", err)
	}
	return nil
}

// copyIndex copies the worktree's index into the scratch repository, with the
// shared index a split index names (git keeps both in the admin dir).
func copyIndex(adminDir, gitDir string) error {
	ents, err := os.ReadDir(adminDir)
	if err != nil {
		return fmt.Errorf("read worktree admin dir: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if name != "index" && !strings.HasPrefix(name, "sharedindex.") {
			continue
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("worktree %s is not a file", name)
		}
		b, err := os.ReadFile(filepath.Join(adminDir, name))
		if err != nil {
			return fmt.Errorf("copy index: %w", err)
		}
		if err := os.WriteFile(filepath.Join(gitDir, name), b, 0o644); err != nil {
			return fmt.Errorf("copy index: %w", err)
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

package hostgit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// Worktree is a linked worktree created for a task.
type Worktree struct {
	// Path is the worktree's files (absolute, symlinks resolved). The agent may have
	// written anything here, including its .git pointer file.
	Path string
	// GitDir is <common dir>/worktrees/<id>: supervisor-owned, never mounted. Every
	// command on the worktree uses --git-dir=GitDir --work-tree=Path.
	GitDir string
	// Branch is the branch checked out in the worktree ("" if detached).
	Branch string
	// Base is the commit the branch was (re)set to by AddWorktree ("" if unknown).
	Base string
}

// baseFile records Worktree.Base inside the supervisor-owned admin dir; git ignores
// unknown files there and removes them with the worktree.
const baseFile = "trakkar-base"

var hexSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// AddWorktree creates a linked worktree at path with branch at startPoint, as
// `git worktree add --no-track -B <branch> -- <path> <commit>` (registered with
// --no-checkout, then checked out with read-tree, so that a fetch need only
// wait for the registration). An existing local
// branch of that name is only ever moved forward: if startPoint lacks any of its
// commits (earlier work of the task) it fails with ErrWouldDropCommits and leaves the
// branch alone. It fails if branch is checked out in another worktree or path exists
// and is not empty. Filter drivers are neutralised for the checkout, as for CommitAll, so
// the files the agent sees round-trip unchanged through the commit.
func (g *Git) AddWorktree(ctx context.Context, repo, path, branch, startPoint string) (Worktree, error) {
	wt, _, err := g.addWorktree(ctx, repo, path, branch, startPoint, nil)
	return wt, err
}

// AddWorktreeOwned is AddWorktree with the files made by owner: the folder
// is created and registered by this process, then its files are checked out
// by a git running as owner (the container's user), so no chown of the tree
// is needed before or after the container. That git writes only into the new
// folder and a private temporary index beside it, which is then copied into
// the worktree's admin dir; it reads the repository's objects, so owner must
// be able to reach them. When it cannot, the checkout is done by this
// process as usual and owned is false: the caller hands the files over
// itself.
func (g *Git) AddWorktreeOwned(ctx context.Context, repo, path, branch, startPoint string, owner Owner) (wt Worktree, owned bool, err error) {
	return g.addWorktree(ctx, repo, path, branch, startPoint, &owner)
}

func (g *Git) addWorktree(ctx context.Context, repo, path, branch, startPoint string, owner *Owner) (Worktree, bool, error) {
	if err := ValidateBranch(branch); err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	if err := validateArg("start point", startPoint); err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	abs, err := absPath(path)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	base, err := g.resolveCommit(ctx, gd, startPoint)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: start point %q: %w", startPoint, err)
	}
	tip, err := g.localTip(ctx, gd, branch)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	if tip != "" {
		ff, err := g.isAncestor(ctx, gd, tip, base)
		if err != nil {
			return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
		}
		if !ff {
			return Worktree{}, false, fmt.Errorf("add worktree: branch %s at %s, start point %s: %w", branch, tip[:12], startPoint, ErrWouldDropCommits)
		}
	}
	filters, err := g.filterOverrides(ctx, gd)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	// Only the registration holds the lock; the checkout, long in a large
	// repository, follows outside it.
	g.worktreesMu.Lock()
	_, err = g.run(ctx, call{op: "worktree add", config: filters,
		args: []string{"--git-dir=" + gd, "worktree", "add", "--no-track", "--no-checkout", "-B", branch, "--", abs, base}})
	g.worktreesMu.Unlock()
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	common, err := g.commonDirOf(ctx, gd)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	admin, err := findAdminDir(common, resolved)
	if err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(admin, baseFile), []byte(base+"\n"), 0o644); err != nil {
		return Worktree{}, false, fmt.Errorf("add worktree: record base: %w", err)
	}
	owned := false
	if owner != nil {
		if err := g.checkoutAs(ctx, admin, resolved, base, *owner, filters); err != nil {
			g.log.Warn("checkout as the container user failed; checking out as this process",
				zap.Int("uid", owner.UID), zap.Error(err))
			for _, p := range []string{resolved, filepath.Join(resolved, ".git")} {
				if err := os.Lchown(p, os.Geteuid(), os.Getegid()); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
				}
			}
		} else {
			owned = true
		}
	}
	// What `worktree add` itself would do, as `reset --hard`.
	if !owned {
		if _, err := g.run(ctx, call{op: "checkout", config: filters,
			args: []string{"--git-dir=" + admin, "--work-tree=" + resolved, "read-tree", "--reset", "-u", base}}); err != nil {
			return Worktree{}, false, fmt.Errorf("add worktree: %w", err)
		}
	}
	g.log.Info("worktree added", zap.String("path", resolved), zap.String("branch", branch), zap.String("base", base),
		zap.Bool("owned_by_container_user", owned))
	return Worktree{Path: resolved, GitDir: admin, Branch: branch, Base: base}, owned, nil
}

// checkoutAs fills the empty worktree folder with base's files as owner. The
// git doing it gets no access to anything of this process's: its index, cwd
// and HOME are a fresh folder beside the worktree, its global config is
// empty, and it runs with the same hardening and neutralised filters as
// every other call.
func (g *Git) checkoutAs(ctx context.Context, admin, path, base string, owner Owner, filters []configPair) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), checkoutPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, p := range []string{tmp, path, filepath.Join(path, ".git")} {
		if err := os.Lchown(p, owner.UID, owner.GID); err != nil {
			return err
		}
	}
	index := filepath.Join(tmp, "index")
	if _, err := g.run(ctx, call{op: "checkout as container user", config: filters, as: &owner, dir: tmp,
		env: []string{"HOME=" + tmp, "XDG_CONFIG_HOME=" + filepath.Join(tmp, ".config"),
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_INDEX_FILE=" + index},
		args: []string{"--git-dir=" + admin, "--work-tree=" + path, "read-tree", "--reset", "-u", base}}); err != nil {
		return err
	}
	// Read without following links: the file is owner's until it is copied.
	b, err := readRegular(index)
	if err != nil {
		return fmt.Errorf("read the checkout's index: %w", err)
	}
	return writeFileAtomic(filepath.Join(admin, "index"), b, 0o644)
}

// readRegular reads path if it is a regular file, never following a symlink.
func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return io.ReadAll(f)
}

// OpenWorktree finds the existing linked worktree at path. It trusts only git's
// registry (`worktree list --porcelain`) and the admin dirs under the common dir —
// never <path>/.git, which the agent can rewrite.
func (g *Git) OpenWorktree(ctx context.Context, repo, path string) (Worktree, error) {
	abs, err := absPath(path)
	if err != nil {
		return Worktree{}, fmt.Errorf("open worktree: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return Worktree{}, fmt.Errorf("open worktree: %w", err)
	}
	out, err := g.run(ctx, call{op: "worktree list", readOnly: true,
		args: []string{"--git-dir=" + gd, "worktree", "list", "--porcelain", "-z"}})
	if err != nil {
		return Worktree{}, fmt.Errorf("open worktree: %w", err)
	}
	entries := parseWorktreeList(out)
	var found *worktreeEntry
	for i := range entries {
		if entries[i].path == abs {
			if i == 0 {
				return Worktree{}, fmt.Errorf("open worktree: %s is the main worktree, not a linked one", abs)
			}
			found = &entries[i]
			break
		}
	}
	if found == nil {
		return Worktree{}, fmt.Errorf("open worktree: %s is not a registered worktree of %s", abs, repo)
	}
	common, err := g.commonDirOf(ctx, gd)
	if err != nil {
		return Worktree{}, fmt.Errorf("open worktree: %w", err)
	}
	admin, err := findAdminDir(common, abs)
	if err != nil {
		return Worktree{}, fmt.Errorf("open worktree: %w", err)
	}
	wt := Worktree{Path: abs, GitDir: admin, Branch: strings.TrimPrefix(found.branch, "refs/heads/")}
	if b, err := os.ReadFile(filepath.Join(admin, baseFile)); err == nil {
		if s := strings.TrimSpace(string(b)); hexSHA.MatchString(s) {
			wt.Base = s
		}
	}
	return wt, nil
}

// CommitAll stages everything in the worktree (`add -A`) and commits it with
// --no-verify, using the trusted admin dir and cwd outside the tree. Nothing staged →
// (false, "", nil). The message goes through stdin (-F -), never argv.
func (g *Git) CommitAll(ctx context.Context, wt Worktree, message string) (bool, string, error) {
	if strings.TrimSpace(message) == "" {
		return false, "", errors.New("commit: empty message")
	}
	wtArgs, filters, err := g.prepareWorktree(ctx, wt)
	if err != nil {
		return false, "", fmt.Errorf("commit: %w", err)
	}
	if _, err := g.run(ctx, call{op: "add", config: filters,
		args: append(append([]string{}, wtArgs...), "add", "-A")}); err != nil {
		return false, "", fmt.Errorf("commit: %w", err)
	}
	staged, err := g.hasStaged(ctx, wtArgs, filters)
	if err != nil {
		return false, "", fmt.Errorf("commit: %w", err)
	}
	if !staged {
		return false, "", nil
	}
	if err := g.commitIndex(ctx, wtArgs, filters, message); err != nil {
		return false, "", fmt.Errorf("commit: %w", err)
	}
	sha, err := g.committedHead(ctx, wt)
	if err != nil {
		return true, "", fmt.Errorf("commit: %w", err)
	}
	return true, sha, nil
}

// HasCommitsSince reports whether the worktree's HEAD differs from base (wt.Base when
// base is empty). The agent has no gitdir in the container, so this is a guard.
func (g *Git) HasCommitsSince(ctx context.Context, wt Worktree, base string) (bool, error) {
	if base == "" {
		base = wt.Base
	}
	if err := validateArg("base", base); err != nil {
		return false, fmt.Errorf("has commits: %w", err)
	}
	if _, err := g.worktreeArgs(wt); err != nil {
		return false, fmt.Errorf("has commits: %w", err)
	}
	head, err := g.resolveCommit(ctx, wt.GitDir, "HEAD")
	if err != nil {
		return false, fmt.Errorf("has commits: %w", err)
	}
	b, err := g.resolveCommit(ctx, wt.GitDir, base)
	if err != nil {
		return false, fmt.Errorf("has commits: base: %w", err)
	}
	return head != b, nil
}

// RemoveWorktree runs `worktree remove --force` (--force also skips git's cleanliness
// check, which would run status inside the agent's files), then `worktree prune`, and
// deletes whatever is left of the directory. If git refuses (for example because the
// agent rewrote the .git pointer file) the directory is deleted and pruned anyway.
// Only a directory git has registered as a linked worktree of repo is ever deleted; an
// unregistered path that still exists is an error, a missing one is a no-op.
func (g *Git) RemoveWorktree(ctx context.Context, repo string, wt Worktree) error {
	abs, err := absPath(wt.Path)
	if err != nil {
		return fmt.Errorf("remove worktree: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return fmt.Errorf("remove worktree: %w", err)
	}
	common, err := g.commonDirOf(ctx, gd)
	if err != nil {
		return fmt.Errorf("remove worktree: %w", err)
	}
	prune := func() error {
		if err := g.pruneWorktrees(ctx, gd); err != nil {
			return fmt.Errorf("remove worktree: %w", err)
		}
		return nil
	}
	admin, err := findAdminDir(common, abs)
	if err != nil {
		if _, statErr := os.Lstat(abs); errors.Is(statErr, os.ErrNotExist) {
			return prune() // already gone
		}
		return fmt.Errorf("remove worktree: refusing to delete %s: not a registered linked worktree of %s", abs, repo)
	}
	g.worktreesMu.Lock()
	_, err = g.run(ctx, call{op: "worktree remove",
		args: []string{"--git-dir=" + gd, "worktree", "remove", "--force", "--", abs}})
	g.worktreesMu.Unlock()
	if err != nil {
		g.log.Warn("git worktree remove failed; deleting the directory", zap.String("path", abs), zap.Error(err))
	}
	if err := forceRemoveAll(abs); err != nil {
		return fmt.Errorf("remove worktree: %w", err)
	}
	if err := prune(); err != nil {
		return err
	}
	if _, err := os.Stat(admin); err == nil {
		return fmt.Errorf("remove worktree: admin dir %s still present after prune", admin)
	}
	g.log.Info("worktree removed", zap.String("path", abs))
	return nil
}

// worktreeArgs validates wt and returns the explicit --git-dir/--work-tree pair.
func (g *Git) worktreeArgs(wt Worktree) ([]string, error) {
	if !filepath.IsAbs(wt.Path) || !filepath.IsAbs(wt.GitDir) {
		return nil, fmt.Errorf("worktree paths must be absolute (path %q, gitdir %q)", wt.Path, wt.GitDir)
	}
	// The admin dir must be git's own record of this worktree, not a gitdir that sits
	// inside the agent-writable tree.
	if within(wt.GitDir, wt.Path) {
		return nil, fmt.Errorf("worktree gitdir %s lies inside the worktree", wt.GitDir)
	}
	b, err := os.ReadFile(filepath.Join(wt.GitDir, "gitdir"))
	if err != nil {
		return nil, fmt.Errorf("worktree gitdir: %w", err)
	}
	if strings.TrimSpace(string(b)) != filepath.Join(wt.Path, ".git") {
		return nil, fmt.Errorf("worktree gitdir %s does not belong to %s", wt.GitDir, wt.Path)
	}
	return []string{"--git-dir=" + wt.GitDir, "--work-tree=" + wt.Path}, nil
}

// checkBranch makes sure the admin dir's HEAD is on wt.Branch, so a mixed-up Worktree
// value never commits onto some other branch.
func (g *Git) checkBranch(ctx context.Context, wt Worktree) error {
	out, err := g.run(ctx, call{op: "symbolic-ref", readOnly: true,
		args: []string{"--git-dir=" + wt.GitDir, "symbolic-ref", "--quiet", "HEAD"}})
	head := strings.TrimSpace(out)
	if err != nil && exitCode(err) != 1 {
		return err
	}
	if wt.Branch == "" && head == "" {
		return nil
	}
	if head != "refs/heads/"+wt.Branch {
		return fmt.Errorf("worktree HEAD is %q, expected branch %q", head, wt.Branch)
	}
	return nil
}

// resolveCommit resolves rev to a full commit id using the given git dir.
func (g *Git) resolveCommit(ctx context.Context, gd, rev string) (string, error) {
	out, err := g.run(ctx, call{op: "rev-parse", readOnly: true,
		args: []string{"--git-dir=" + gd, "rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"}})
	if err != nil {
		if exitCode(err) == 1 {
			return "", fmt.Errorf("%q is not a commit", rev)
		}
		return "", err
	}
	sha := strings.TrimSpace(out)
	if !hexSHA.MatchString(sha) {
		return "", fmt.Errorf("unexpected rev-parse output %q", sha)
	}
	return sha, nil
}

// commonDirOf is the common dir of a git dir of the user's repository (its
// own, or a worktree's admin dir): fixed for the path, so asked once.
func (g *Git) commonDirOf(ctx context.Context, gd string) (string, error) {
	key := dirKey{gd, "common dir of git dir"}
	if v, ok := g.dirs.Load(key); ok {
		return v.(string), nil
	}
	out, err := g.run(ctx, call{op: "rev-parse", readOnly: true,
		args: []string{"--git-dir=" + gd, "rev-parse", "--path-format=absolute", "--git-common-dir"}})
	if err != nil {
		return "", err
	}
	common := strings.TrimSpace(out)
	g.dirs.Store(key, common)
	return common, nil
}

// filterOverrides returns config entries that empty every filter driver defined in
// any config git would read for gd (the user's repo config may define lfs or custom
// filters; an agent-written .gitattributes can select them by name). Without a command
// git passes content through unchanged; required=false keeps that from being an error.
func (g *Git) filterOverrides(ctx context.Context, gd string) ([]configPair, error) {
	out, err := g.run(ctx, call{op: "config", readOnly: true,
		args: []string{"--git-dir=" + gd, "config", "-z", "--get-regexp", `^filter\.`}})
	if err != nil {
		if exitCode(err) == 1 { // no match
			return nil, nil
		}
		return nil, fmt.Errorf("list filter drivers: %w", err)
	}
	seen := map[string]bool{}
	var pairs []configPair
	for _, entry := range strings.Split(out, "\x00") {
		key, _, _ := strings.Cut(entry, "\n")
		rest, ok := strings.CutPrefix(key, "filter.")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '.')
		if i <= 0 {
			continue
		}
		name := rest[:i]
		if seen[name] {
			continue
		}
		seen[name] = true
		for _, v := range []string{"clean", "smudge", "process"} {
			pairs = append(pairs, configPair{key: "filter." + name + "." + v, value: ""})
		}
		pairs = append(pairs, configPair{key: "filter." + name + ".required", value: "false"})
	}
	return pairs, nil
}

// findAdminDir returns the admin dir under <common>/worktrees whose gitdir file names
// <path>/.git.
func findAdminDir(common, path string) (string, error) {
	want := filepath.Join(path, ".git")
	root := filepath.Join(common, "worktrees")
	ents, err := os.ReadDir(root)
	if err != nil {
		return "", fmt.Errorf("list worktree admin dirs: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "gitdir"))
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(b)) == want {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no admin dir under %s for worktree %s", root, path)
}

type worktreeEntry struct {
	path, head, branch string
}

// parseWorktreeList parses `worktree list --porcelain -z`.
func parseWorktreeList(out string) []worktreeEntry {
	var entries []worktreeEntry
	var cur *worktreeEntry
	for _, field := range strings.Split(out, "\x00") {
		if field == "" {
			cur = nil
			continue
		}
		k, v, _ := strings.Cut(field, " ")
		switch k {
		case "worktree":
			entries = append(entries, worktreeEntry{path: v})
			cur = &entries[len(entries)-1]
		case "HEAD":
			if cur != nil {
				cur.head = v
			}
		case "branch":
			if cur != nil {
				cur.branch = v
			}
		}
	}
	return entries
}

func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("path %q: %w", p, err)
	}
	return abs, nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// forceRemoveAll deletes path; if that fails (the agent may leave directories without
// write permission) it makes every directory owner-writable, without following
// symlinks, and tries again.
func forceRemoveAll(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	return nil
}

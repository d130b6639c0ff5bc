package hostgit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Modes as git records them in trees and the index.
const (
	ModeFile    = "100644"
	ModeExec    = "100755"
	ModeSymlink = "120000"
	ModeGitlink = "160000"
)

// StatusNotStaged marks a Change for a path that exists in the work tree but that
// `git add` refused to stage (an invalid path such as ".GIT/config" or "git~1/x", an
// unreadable file, a nested repository without a commit). It is never committed, so
// committing anyway would silently drop it; the import policy refuses it instead.
const StatusNotStaged = "!"

// ErrNothingStaged is returned by CommitStaged when the index equals HEAD.
var ErrNothingStaged = errors.New("nothing staged")

// maxLinkTarget bounds how much of a symlink blob is read. `git add` records the link
// text, which the kernel limits to PATH_MAX; a bigger blob is reported with an empty
// LinkTarget, which a policy must treat as unknown.
const maxLinkTarget = 64 << 10

// Change is one path that differs from HEAD (StageAll) or from base (ChangesSince).
type Change struct {
	// Path is repo-relative and slash-separated, byte for byte as git records it (it
	// may contain newlines, invalid UTF-8 or a trailing "/" for a not-staged
	// directory).
	Path string
	// Status is git's letter: "A", "M", "D", "T" (type change), "U" (unmerged), or
	// StatusNotStaged.
	Status string
	// Mode is the new mode (ModeFile, ModeExec, ModeSymlink, ModeGitlink); "" for a
	// deletion or a not-staged path.
	Mode string
	// Size is the new blob's size in bytes (files and symlinks; 0 otherwise).
	Size int64
	// LinkTarget is the link text of a symlink, read from the blob git stored (never
	// by following the link on disk). "" if the blob is larger than 64 KiB.
	LinkTarget string
}

// StageAll stages everything in the worktree (`add -A`, with the same hardening and
// filter neutralisation as CommitAll) and returns how the index differs from HEAD.
// Paths git refuses to stage do not abort staging: they are returned with Status
// StatusNotStaged so the caller can refuse the import instead of losing them. Nothing
// is committed, and nothing enters the repository's object store: objects are
// written to a quarantine (quarantine.go) that CommitStaged migrates and Unstage
// discards, so follow with one of them.
func (g *Git) StageAll(ctx context.Context, wt Worktree) ([]Change, error) {
	wtArgs, filters, err := g.prepareWorktree(ctx, wt)
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	objects, err := g.objectsDir(ctx, wt.GitDir)
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	q := quarantineDir(wt)
	stale, err := freshQuarantine(q)
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	if stale {
		// An earlier stage was neither committed nor unstaged (a crash): its index
		// entries may name objects that only the old quarantine held, and `add`
		// would not hash a file again whose stat data still matches.
		if err := g.resetIndex(ctx, wtArgs, filters, nil); err != nil {
			return nil, fmt.Errorf("stage: reset an abandoned stage: %w", err)
		}
	}
	qenv := quarantineEnv(q, objects)
	changes, err := g.stageInto(ctx, wt, wtArgs, filters, qenv)
	if err != nil || len(changes) == 0 {
		// Nothing will be committed from this quarantine: drop it, after putting the
		// index back so it names no object only the quarantine held.
		if rerr := g.resetIndex(ctx, wtArgs, filters, qenv); rerr == nil {
			_ = os.RemoveAll(q)
		}
	}
	return changes, err
}

// stageInto runs `add -A` with objects written to the quarantine (qenv) and
// returns how the index differs from HEAD.
func (g *Git) stageInto(ctx context.Context, wt Worktree, wtArgs []string, filters []configPair, qenv []string) ([]Change, error) {
	with := func(op string, args ...string) call {
		return call{op: op, config: filters, env: qenv, args: append(append([]string{}, wtArgs...), args...)}
	}
	var notStaged []Change
	if _, addErr := g.run(ctx, with("add", "add", "-A", "--ignore-errors")); addErr != nil {
		if exitCode(addErr) != 1 {
			return nil, fmt.Errorf("stage: %w", addErr)
		}
		// --ignore-errors exits 1 after staging everything it could. What is left
		// untracked and not ignored is exactly what git refused.
		out, err := g.run(ctx, with("ls-files", "ls-files", "-z", "--others", "--exclude-standard"))
		if err != nil {
			return nil, fmt.Errorf("stage: list unstaged paths: %w", err)
		}
		for _, p := range strings.Split(out, "\x00") {
			if p != "" {
				notStaged = append(notStaged, Change{Path: p, Status: StatusNotStaged})
			}
		}
		if len(notStaged) == 0 {
			return nil, fmt.Errorf("stage: %w", addErr)
		}
	}
	out, err := g.run(ctx, with("diff-index", "diff-index", "--cached", "--raw", "-z", "--no-renames",
		"--no-ext-diff", "--no-textconv", "--ignore-submodules=none", "HEAD", "--"))
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	changes, blobs, err := parseRaw(out)
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	if err := g.fillBlobs(ctx, wt.GitDir, qenv, changes, blobs); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	changes = append(changes, notStaged...)
	g.log.Info("staged", zap.String("path", wt.Path), zap.Int("changes", len(changes)), zap.Int("not_staged", len(notStaged)))
	return changes, nil
}

// CommitStaged commits exactly what is staged (no `add`) with --no-verify and returns
// the new HEAD. The message goes through stdin, never argv. It returns
// ErrNothingStaged when the index equals HEAD.
func (g *Git) CommitStaged(ctx context.Context, wt Worktree, message string) (string, error) {
	if strings.TrimSpace(message) == "" {
		return "", errors.New("commit staged: empty message")
	}
	wtArgs, filters, err := g.prepareWorktree(ctx, wt)
	if err != nil {
		return "", fmt.Errorf("commit staged: %w", err)
	}
	// Committing is the acceptance: only now do the staged objects enter the store.
	objects, err := g.objectsDir(ctx, wt.GitDir)
	if err != nil {
		return "", fmt.Errorf("commit staged: %w", err)
	}
	if err := migrateQuarantine(quarantineDir(wt), objects); err != nil {
		return "", fmt.Errorf("commit staged: %w", err)
	}
	if err := os.RemoveAll(quarantineDir(wt)); err != nil {
		return "", fmt.Errorf("commit staged: remove quarantine: %w", err)
	}
	staged, err := g.hasStaged(ctx, wtArgs, filters)
	if err != nil {
		return "", fmt.Errorf("commit staged: %w", err)
	}
	if !staged {
		return "", fmt.Errorf("commit staged: %w", ErrNothingStaged)
	}
	if err := g.commitIndex(ctx, wtArgs, filters, message); err != nil {
		return "", fmt.Errorf("commit staged: %w", err)
	}
	sha, err := g.committedHead(ctx, wt)
	if err != nil {
		return "", fmt.Errorf("commit staged: %w", err)
	}
	return sha, nil
}

// Unstage resets the index to HEAD and leaves the files alone, like a mixed reset.
// It uses `read-tree -m -i HEAD`, which never reads or writes the work tree (so a
// refused change is not re-hashed, filtered or touched) but keeps cached stat data
// for unchanged entries.
func (g *Git) Unstage(ctx context.Context, wt Worktree) error {
	wtArgs, filters, err := g.prepareWorktree(ctx, wt)
	if err != nil {
		return fmt.Errorf("unstage: %w", err)
	}
	q := quarantineDir(wt)
	var qenv []string
	if _, err := os.Lstat(q); err == nil {
		objects, err := g.objectsDir(ctx, wt.GitDir)
		if err != nil {
			return fmt.Errorf("unstage: %w", err)
		}
		qenv = quarantineEnv(q, objects)
	}
	if err := g.resetIndex(ctx, wtArgs, filters, qenv); err != nil {
		return fmt.Errorf("unstage: %w", err)
	}
	// The refused objects go with the quarantine; the user's store never saw them.
	if err := os.RemoveAll(q); err != nil {
		return fmt.Errorf("unstage: remove quarantine: %w", err)
	}
	g.log.Info("unstaged", zap.String("path", wt.Path))
	return nil
}

// resetIndex is `read-tree -m -i HEAD` (see Unstage), with qenv while the index
// may still name quarantined objects. -i keeps git from checking the work tree
// against the index: after a crash the files may have changed since they were
// staged (ownership handed over and back, a rewrite), and a plain -m then
// refuses with "not uptodate".
func (g *Git) resetIndex(ctx context.Context, wtArgs []string, filters []configPair, qenv []string) error {
	_, err := g.run(ctx, call{op: "read-tree", config: filters, env: qenv,
		args: append(append([]string{}, wtArgs...), "read-tree", "-m", "-i", "HEAD")})
	return err
}

// ChangesSince returns the changes made by every commit in base..HEAD (wt.Base when
// base is empty), each commit against each of its parents (-m) and root commits
// against the empty tree. A path changed by several commits appears once per
// distinct state. It is a union rather than the net base→HEAD diff on purpose:
// pushing the branch publishes every intermediate tree, so a .git path added in one
// commit and deleted in the next must still be seen by the policy.
func (g *Git) ChangesSince(ctx context.Context, wt Worktree, base string) ([]Change, error) {
	if base == "" {
		base = wt.Base
	}
	if err := validateArg("base", base); err != nil {
		return nil, fmt.Errorf("changes since: %w", err)
	}
	if _, err := g.worktreeArgs(wt); err != nil {
		return nil, fmt.Errorf("changes since: %w", err)
	}
	head, err := g.resolveCommit(ctx, wt.GitDir, "HEAD")
	if err != nil {
		return nil, fmt.Errorf("changes since: %w", err)
	}
	b, err := g.resolveCommit(ctx, wt.GitDir, base)
	if err != nil {
		return nil, fmt.Errorf("changes since: base: %w", err)
	}
	gd := "--git-dir=" + wt.GitDir
	revs, err := g.run(ctx, call{op: "rev-list", readOnly: true,
		args: []string{gd, "rev-list", head, "^" + b, "--"}})
	if err != nil {
		return nil, fmt.Errorf("changes since: %w", err)
	}
	if strings.TrimSpace(revs) == "" {
		return nil, nil
	}
	out, err := g.run(ctx, call{op: "diff-tree", readOnly: true, stdin: strings.NewReader(revs),
		args: []string{gd, "diff-tree", "--stdin", "--no-commit-id", "-r", "-m", "--root", "--raw", "-z",
			"--no-renames", "--no-ext-diff", "--no-textconv", "--ignore-submodules=none"}})
	if err != nil {
		return nil, fmt.Errorf("changes since: %w", err)
	}
	all, allBlobs, err := parseRaw(out)
	if err != nil {
		return nil, fmt.Errorf("changes since: %w", err)
	}
	type key struct{ path, status, mode, blob string }
	seen := make(map[key]bool, len(all))
	var changes []Change
	var blobs []string
	for i, c := range all {
		k := key{c.Path, c.Status, c.Mode, allBlobs[i]}
		if !seen[k] {
			seen[k] = true
			changes = append(changes, c)
			blobs = append(blobs, allBlobs[i])
		}
	}
	if err := g.fillBlobs(ctx, wt.GitDir, nil, changes, blobs); err != nil {
		return nil, fmt.Errorf("changes since: %w", err)
	}
	return changes, nil
}

// prepareWorktree validates wt, checks its branch and returns the --git-dir/--work-tree
// pair and the filter-driver overrides every index-touching command needs.
func (g *Git) prepareWorktree(ctx context.Context, wt Worktree) ([]string, []configPair, error) {
	wtArgs, err := g.worktreeArgs(wt)
	if err != nil {
		return nil, nil, err
	}
	filters, err := g.filterOverrides(ctx, wt.GitDir)
	if err != nil {
		return nil, nil, err
	}
	if err := g.checkBranch(ctx, wt); err != nil {
		return nil, nil, err
	}
	return wtArgs, filters, nil
}

// hasStaged reports whether the index differs from HEAD. Plumbing diff-index never
// runs textconv or external diff drivers.
func (g *Git) hasStaged(ctx context.Context, wtArgs []string, filters []configPair) (bool, error) {
	_, err := g.run(ctx, call{op: "diff-index", config: filters, args: append(append([]string{}, wtArgs...),
		"diff-index", "--quiet", "--cached", "--no-ext-diff", "--no-textconv", "--ignore-submodules=none", "HEAD", "--")})
	switch {
	case err == nil:
		return false, nil
	case exitCode(err) == 1:
		return true, nil
	default:
		return false, err
	}
}

// commitIndex commits the index with --no-verify.
func (g *Git) commitIndex(ctx context.Context, wtArgs []string, filters []configPair, message string) error {
	_, err := g.run(ctx, call{op: "commit", config: filters, stdin: strings.NewReader(message),
		args: append(append([]string{}, wtArgs...), "commit", "--no-verify", "--no-gpg-sign", "--file=-")})
	return err
}

// committedHead reads and logs HEAD after a commit.
func (g *Git) committedHead(ctx context.Context, wt Worktree) (string, error) {
	sha, err := g.resolveCommit(ctx, wt.GitDir, "HEAD")
	if err != nil {
		return "", fmt.Errorf("read HEAD: %w", err)
	}
	g.log.Info("committed", zap.String("path", wt.Path), zap.String("branch", wt.Branch), zap.String("sha", sha))
	return sha, nil
}

// parseRaw parses `--raw -z` diff output without renames: records of
// ":<old mode> <new mode> <old id> <new id> <status>\0<path>\0". blobs[i] is the new
// object id of changes[i] ("" for deletions).
func parseRaw(out string) (changes []Change, blobs []string, err error) {
	for len(out) > 0 {
		meta, rest, ok := strings.Cut(out, "\x00")
		if !ok {
			return nil, nil, fmt.Errorf("parse raw diff: truncated record %q", meta)
		}
		f := strings.Fields(strings.TrimPrefix(meta, ":"))
		if !strings.HasPrefix(meta, ":") || len(f) != 5 || f[4] == "" {
			return nil, nil, fmt.Errorf("parse raw diff: bad record %q", meta)
		}
		status := strings.TrimRight(f[4], "0123456789") // drop a similarity score
		if status == "R" || status == "C" {
			return nil, nil, fmt.Errorf("parse raw diff: unexpected %s record with renames disabled", status)
		}
		path, next, ok := strings.Cut(rest, "\x00")
		if !ok || path == "" {
			return nil, nil, errors.New("parse raw diff: record without a path")
		}
		c := Change{Path: path, Status: status, Mode: f[1]}
		blob := f[3]
		if status == "D" || f[1] == "000000" {
			c.Mode, blob = "", ""
		}
		changes = append(changes, c)
		blobs = append(blobs, blob)
		out = next
	}
	return changes, blobs, nil
}

// fillBlobs sets Size for files and symlinks and LinkTarget for symlinks, from the
// objects git stored (blobs[i] is the id of changes[i]), in two batched cat-file calls.
func (g *Git) fillBlobs(ctx context.Context, gitDir string, qenv []string, changes []Change, blobs []string) error {
	var ids []string
	seen := map[string]bool{}
	for i, c := range changes {
		if isBlobMode(c.Mode) && !seen[blobs[i]] {
			if !hexSHA.MatchString(blobs[i]) {
				return fmt.Errorf("bad object id %q for %q", blobs[i], c.Path)
			}
			seen[blobs[i]] = true
			ids = append(ids, blobs[i])
		}
	}
	if len(ids) == 0 {
		return nil
	}
	out, err := g.run(ctx, call{op: "cat-file", readOnly: true, env: qenv, stdin: strings.NewReader(strings.Join(ids, "\n") + "\n"),
		args: []string{"--git-dir=" + gitDir, "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"}})
	if err != nil {
		return err
	}
	sizes := make(map[string]int64, len(ids))
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[1] != "blob" {
			return fmt.Errorf("cat-file: unexpected object %q", line)
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("cat-file: bad size in %q", line)
		}
		sizes[f[0]] = n
	}
	var links []string
	linkSeen := map[string]bool{}
	for i := range changes {
		c := &changes[i]
		if !isBlobMode(c.Mode) {
			continue
		}
		n, ok := sizes[blobs[i]]
		if !ok {
			return fmt.Errorf("cat-file: no size for %s", blobs[i])
		}
		c.Size = n
		if c.Mode == ModeSymlink && n <= maxLinkTarget && !linkSeen[blobs[i]] {
			linkSeen[blobs[i]] = true
			links = append(links, blobs[i])
		}
	}
	if len(links) == 0 {
		return nil
	}
	targets, err := g.readBlobs(ctx, gitDir, qenv, links)
	if err != nil {
		return err
	}
	for i := range changes {
		if changes[i].Mode == ModeSymlink {
			changes[i].LinkTarget = targets[blobs[i]]
		}
	}
	return nil
}

// readBlobs returns the contents of small blobs via `cat-file --batch`.
func (g *Git) readBlobs(ctx context.Context, gitDir string, qenv []string, ids []string) (map[string]string, error) {
	out, err := g.run(ctx, call{op: "cat-file", readOnly: true, env: qenv, stdin: strings.NewReader(strings.Join(ids, "\n") + "\n"),
		args: []string{"--git-dir=" + gitDir, "cat-file", "--batch"}})
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(strings.NewReader(out))
	blobs := make(map[string]string, len(ids))
	for range ids {
		header, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("cat-file --batch: %w", err)
		}
		f := strings.Fields(header)
		if len(f) != 3 || f[1] != "blob" {
			return nil, fmt.Errorf("cat-file --batch: unexpected header %q", header)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 0 || n > maxLinkTarget {
			return nil, fmt.Errorf("cat-file --batch: bad size in %q", header)
		}
		body := make([]byte, n+1) // content plus the trailing newline
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("cat-file --batch: %w", err)
		}
		blobs[f[0]] = string(body[:n])
	}
	return blobs, nil
}

func isBlobMode(mode string) bool {
	return mode == ModeFile || mode == ModeExec || mode == ModeSymlink
}

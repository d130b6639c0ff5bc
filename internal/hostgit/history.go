package hostgit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrWouldDropCommits is returned by AddWorktree when moving the branch to the
// start point would take commits off it.
var ErrWouldDropCommits = errors.New("the branch holds commits the start point lacks")

// BranchTip returns the commit refs/heads/<branch> points at, or "" when there
// is no such local branch.
func (g *Git) BranchTip(ctx context.Context, repo, branch string) (string, error) {
	if err := ValidateBranch(branch); err != nil {
		return "", fmt.Errorf("branch tip: %w", err)
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("branch tip: %w", err)
	}
	return g.localTip(ctx, gd, branch)
}

func (g *Git) localTip(ctx context.Context, gd, branch string) (string, error) {
	out, err := g.run(ctx, call{op: "rev-parse", readOnly: true,
		args: []string{"--git-dir=" + gd, "rev-parse", "--verify", "--quiet", "--end-of-options", "refs/heads/" + branch + "^{commit}"}})
	if err != nil {
		if exitCode(err) == 1 {
			return "", nil
		}
		return "", fmt.Errorf("branch tip: %w", err)
	}
	sha := strings.TrimSpace(out)
	if !hexSHA.MatchString(sha) {
		return "", fmt.Errorf("branch tip: unexpected rev-parse output %q", sha)
	}
	return sha, nil
}

// IsAncestor reports whether commit ancestor is reachable from rev (a commit
// is its own ancestor).
func (g *Git) IsAncestor(ctx context.Context, repo, ancestor, rev string) (bool, error) {
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return false, fmt.Errorf("is ancestor: %w", err)
	}
	return g.isAncestor(ctx, gd, ancestor, rev)
}

func (g *Git) isAncestor(ctx context.Context, gd, ancestor, rev string) (bool, error) {
	for kind, s := range map[string]string{"ancestor": ancestor, "revision": rev} {
		if err := validateArg(kind, s); err != nil {
			return false, fmt.Errorf("is ancestor: %w", err)
		}
	}
	_, err := g.run(ctx, call{op: "merge-base", readOnly: true,
		args: []string{"--git-dir=" + gd, "merge-base", "--is-ancestor", "--end-of-options", ancestor, rev}})
	switch {
	case err == nil:
		return true, nil
	case exitCode(err) == 1:
		return false, nil
	}
	return false, fmt.Errorf("is ancestor: %w", err)
}

// CountCommits returns how many commits rev has that from lacks (from..rev).
func (g *Git) CountCommits(ctx context.Context, repo, from, rev string) (int, error) {
	for kind, s := range map[string]string{"from": from, "revision": rev} {
		if err := validateArg(kind, s); err != nil {
			return 0, fmt.Errorf("count commits: %w", err)
		}
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return 0, fmt.Errorf("count commits: %w", err)
	}
	out, err := g.run(ctx, call{op: "rev-list", readOnly: true,
		args: []string{"--git-dir=" + gd, "rev-list", "--count", "--end-of-options", rev, "^" + from}})
	if err != nil {
		return 0, fmt.Errorf("count commits: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("count commits: unexpected rev-list output %q", out)
	}
	return n, nil
}

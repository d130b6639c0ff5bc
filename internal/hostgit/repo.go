package hostgit

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Auth carries the credential for http(s) remotes. The token is sent as an
// "Authorization: Basic base64(x-access-token:TOKEN)" extra header scoped to the
// remote's origin (scheme://host[:port]/), passed through GIT_CONFIG_* env vars:
// never on argv, never logged, redacted from errors. An empty Token sends nothing
// (ssh remotes use the user's ssh setup: ssh reads ~/.ssh from the passwd entry,
// not $HOME, and SSH_AUTH_SOCK is kept).
type Auth struct {
	Token string
}

// secrets returns every form of the token that could show up in git's output.
func (a Auth) secrets() []string {
	if a.Token == "" {
		return nil
	}
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + a.Token))
	return []string{basic, "x-access-token:" + a.Token, a.Token}
}

// config returns the extra-header entries for every http(s) URL among urls.
func (a Auth) config(urls []string) []configPair {
	if a.Token == "" {
		return nil
	}
	header := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+a.Token))
	seen := map[string]bool{}
	var out []configPair
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			continue
		}
		origin := u.Scheme + "://" + u.Host + "/"
		if seen[origin] {
			continue
		}
		seen[origin] = true
		out = append(out, configPair{key: "http." + origin + ".extraHeader", value: header})
	}
	return out
}

// repoGitDir resolves the git dir of the user's checkout. Discovery is acceptable here
// because repo is the user's own trusted checkout, never a task worktree.
func (g *Git) repoGitDir(ctx context.Context, repo string) (string, error) {
	return g.discoverOnce(ctx, repo, "--absolute-git-dir")
}

// discoverOnce is discover for an answer that cannot change while the checkout
// stays at its path (its git dir, its common dir); a failure is not kept, so a
// checkout made later is found.
func (g *Git) discoverOnce(ctx context.Context, dir, flag string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil || dir == "" {
		return g.discover(ctx, dir, flag)
	}
	key := dirKey{abs, flag}
	if v, ok := g.dirs.Load(key); ok {
		return v.(string), nil
	}
	out, err := g.discover(ctx, abs, flag)
	if err != nil {
		return "", err
	}
	g.dirs.Store(key, out)
	return out, nil
}

// discover runs `git -C dir rev-parse <flag>` and maps "not a repository" to ErrNotARepo.
func (g *Git) discover(ctx context.Context, dir, flag string) (string, error) {
	if dir == "" {
		return "", errors.New("empty repository path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("repository path: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("repository path: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("repository path %s: %w", abs, ErrNotARepo)
	}
	out, err := g.run(ctx, call{op: "rev-parse", readOnly: true,
		args: []string{"-C", abs, "rev-parse", "--path-format=absolute", flag}})
	if err != nil {
		se := stderrOf(err)
		if strings.Contains(se, "not a git repository") || strings.Contains(se, "must be run in a work tree") {
			return "", fmt.Errorf("%s: %w", abs, ErrNotARepo)
		}
		return "", err
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return "", fmt.Errorf("%s: %w", abs, ErrNotARepo)
	}
	return out, nil
}

// RepoRoot returns the top level of the user's checkout containing dir.
func (g *Git) RepoRoot(ctx context.Context, dir string) (string, error) {
	root, err := g.discover(ctx, dir, "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	return root, nil
}

// CommonDir returns the absolute common git dir of repo (where config, refs, objects,
// hooks and info/exclude live).
func (g *Git) CommonDir(ctx context.Context, repo string) (string, error) {
	dir, err := g.discoverOnce(ctx, repo, "--git-common-dir")
	if err != nil {
		return "", fmt.Errorf("common dir: %w", err)
	}
	return dir, nil
}

// RemoteURL returns the fetch URL of remote (after insteadOf rewriting).
func (g *Git) RemoteURL(ctx context.Context, repo, remote string) (string, error) {
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("remote url: %w", err)
	}
	urls, err := g.remoteURLs(ctx, gd, remote, false)
	if err != nil {
		return "", fmt.Errorf("remote url: %w", err)
	}
	return urls[0], nil
}

func (g *Git) remoteURLs(ctx context.Context, gd, remote string, push bool) ([]string, error) {
	if err := validateArg("remote", remote); err != nil {
		return nil, err
	}
	args := []string{"--git-dir=" + gd, "remote", "get-url", "--all"}
	if push {
		args = append(args, "--push")
	}
	args = append(args, "--", remote)
	out, err := g.run(ctx, call{op: "remote get-url", readOnly: true, args: args})
	if err != nil {
		if strings.Contains(stderrOf(err), "No such remote") {
			return nil, fmt.Errorf("%q: %w", remote, ErrNoRemote)
		}
		return nil, err
	}
	var urls []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			urls = append(urls, l)
		}
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%q has no url: %w", remote, ErrNoRemote)
	}
	return urls, nil
}

// Fetch fetches remote into its remote-tracking refs (no submodules, no FETCH_HEAD).
// When refs/remotes/<remote>/HEAD is missing (repos not made by clone), it is set from
// the remote's HEAD, as `git remote set-head --auto` would, so DefaultBranch works
// without credentials afterwards.
func (g *Git) Fetch(ctx context.Context, repo, remote string, auth Auth) error {
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	urls, err := g.remoteURLs(ctx, gd, remote, false)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	cfg := auth.config(urls)
	g.worktreesMu.Lock()
	defer g.worktreesMu.Unlock()
	if _, err := g.run(ctx, call{op: "fetch", config: cfg, secrets: auth.secrets(),
		args: []string{"--git-dir=" + gd, "fetch", "--no-recurse-submodules", "--no-write-fetch-head", "--", remote}}); err != nil {
		return fmt.Errorf("fetch %s: %w", remote, err)
	}
	if _, ok, err := g.trackedHEAD(ctx, gd, remote); err != nil || ok {
		return err
	}
	branch, err := g.lsRemoteHEAD(ctx, gd, remote, cfg, auth.secrets())
	if err != nil {
		// Not fatal: the fetch itself worked; DefaultBranch will retry ls-remote.
		g.log.Warn("remote HEAD unknown after fetch", zap.String("remote", remote), zap.Error(err))
		return nil
	}
	target := "refs/remotes/" + remote + "/" + branch
	if _, err := g.run(ctx, call{op: "show-ref", readOnly: true,
		args: []string{"--git-dir=" + gd, "show-ref", "--verify", "--quiet", target}}); err != nil {
		return nil // the remote's HEAD branch was not fetched (unusual refspec); leave it
	}
	if _, err := g.run(ctx, call{op: "symbolic-ref",
		args: []string{"--git-dir=" + gd, "symbolic-ref", "-m", "trakkar: set remote HEAD",
			"refs/remotes/" + remote + "/HEAD", target}}); err != nil {
		return fmt.Errorf("fetch: set %s/HEAD: %w", remote, err)
	}
	return nil
}

// trackedHEAD reads refs/remotes/<remote>/HEAD; ok is false when it is not set.
func (g *Git) trackedHEAD(ctx context.Context, gd, remote string) (string, bool, error) {
	out, err := g.run(ctx, call{op: "symbolic-ref", readOnly: true,
		args: []string{"--git-dir=" + gd, "symbolic-ref", "--quiet", "refs/remotes/" + remote + "/HEAD"}})
	if err != nil {
		if exitCode(err) == 1 || exitCode(err) == 128 && strings.Contains(stderrOf(err), "is not a symbolic ref") {
			return "", false, nil
		}
		return "", false, err
	}
	ref := strings.TrimSpace(out)
	prefix := "refs/remotes/" + remote + "/"
	if !strings.HasPrefix(ref, prefix) {
		return "", false, fmt.Errorf("%s/HEAD points outside the remote: %q", remote, ref)
	}
	branch := strings.TrimPrefix(ref, prefix)
	if err := ValidateBranch(branch); err != nil {
		return "", false, fmt.Errorf("%s/HEAD: %w", remote, err)
	}
	return branch, true, nil
}

// lsRemoteHEAD asks the remote which branch its HEAD points at.
func (g *Git) lsRemoteHEAD(ctx context.Context, gd, remote string, cfg []configPair, secrets []string) (string, error) {
	out, err := g.run(ctx, call{op: "ls-remote", readOnly: true, config: cfg, secrets: secrets,
		args: []string{"--git-dir=" + gd, "ls-remote", "--symref", "--", remote, "HEAD"}})
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "ref: refs/heads/")
		if !ok {
			continue
		}
		branch, target, ok := strings.Cut(rest, "\t")
		if !ok || target != "HEAD" {
			continue
		}
		if err := ValidateBranch(branch); err != nil {
			return "", fmt.Errorf("remote HEAD: %w", err)
		}
		return branch, nil
	}
	return "", fmt.Errorf("remote %s did not report a HEAD branch", remote)
}

// DefaultBranch returns the remote's default branch: refs/remotes/<remote>/HEAD if set,
// else `ls-remote --symref <remote> HEAD` (without credentials: signature has no Auth;
// Fetch sets the ref when missing, so call Fetch first for private http remotes).
func (g *Git) DefaultBranch(ctx context.Context, repo, remote string) (string, error) {
	if err := validateArg("remote", remote); err != nil {
		return "", fmt.Errorf("default branch: %w", err)
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("default branch: %w", err)
	}
	if branch, ok, err := g.trackedHEAD(ctx, gd, remote); err != nil {
		return "", fmt.Errorf("default branch: %w", err)
	} else if ok {
		return branch, nil
	}
	branch, err := g.lsRemoteHEAD(ctx, gd, remote, nil, nil)
	if err != nil {
		return "", fmt.Errorf("default branch: %w", err)
	}
	return branch, nil
}

// RemoteBranchExists reports whether refs/remotes/<remote>/<branch> exists (as of the
// last Fetch).
func (g *Git) RemoteBranchExists(ctx context.Context, repo, remote, branch string) (bool, error) {
	if err := validateArg("remote", remote); err != nil {
		return false, fmt.Errorf("remote branch exists: %w", err)
	}
	if err := ValidateBranch(branch); err != nil {
		return false, fmt.Errorf("remote branch exists: %w", err)
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return false, fmt.Errorf("remote branch exists: %w", err)
	}
	_, err = g.run(ctx, call{op: "show-ref", readOnly: true,
		args: []string{"--git-dir=" + gd, "show-ref", "--verify", "--quiet", "refs/remotes/" + remote + "/" + branch}})
	if err != nil {
		if exitCode(err) == 1 {
			return false, nil
		}
		return false, fmt.Errorf("remote branch exists: %w", err)
	}
	return true, nil
}

// Push pushes refs/heads/<branch> to the same name on remote with --no-verify. It is a
// plain push, not forced and not --force-with-lease: the branch is the agent's own, and
// if someone else pushed to it a non-fast-forward rejection is the right outcome
// (nothing a human pushed is ever overwritten). Tags are not pushed.
func (g *Git) Push(ctx context.Context, repo, remote, branch string, auth Auth) error {
	if err := ValidateBranch(branch); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	gd, err := g.repoGitDir(ctx, repo)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	urls, err := g.remoteURLs(ctx, gd, remote, true)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	ref := "refs/heads/" + branch
	cfg := auth.config(urls)
	_, err = g.run(ctx, call{op: "push", config: cfg, secrets: auth.secrets(),
		args: []string{"--git-dir=" + gd, "push", "--no-verify", "--no-follow-tags", "--no-signed",
			"--", remote, ref + ":" + ref}})
	if err == nil {
		return nil
	}
	// A push that failed may still have landed: one that lost its answer, or a
	// killed supervisor's push still running when the restarted one pushed the
	// same commit ("cannot lock ref ... reference already exists"). Publishing is
	// done when the remote's branch is exactly the local one.
	if ctx.Err() == nil && g.remoteHolds(ctx, gd, urls, branch, cfg, auth.secrets()) {
		g.log.Info("push failed but the remote branch already is the local one", zap.String("branch", branch), zap.Error(err))
		return nil
	}
	return fmt.Errorf("push %s to %s: %w", branch, remote, err)
}

// remoteHolds reports whether refs/heads/<branch> is the local branch's commit
// at every one of the push URLs, as they say now. It asks the push URLs, not
// the remote (whose ls-remote would ask the fetch URL): where the two differ,
// only the push URLs say whether the push landed. Any doubt is false.
func (g *Git) remoteHolds(ctx context.Context, gd string, pushURLs []string, branch string, cfg []configPair, secrets []string) bool {
	local, err := g.localTip(ctx, gd, branch)
	if err != nil || local == "" || len(pushURLs) == 0 {
		return false
	}
	for _, u := range pushURLs {
		out, err := g.run(ctx, call{op: "ls-remote", readOnly: true, config: cfg, secrets: secrets,
			args: []string{"--git-dir=" + gd, "ls-remote", "--", u, "refs/heads/" + branch}})
		if err != nil || !listsRefAt(out, "refs/heads/"+branch, local) {
			return false
		}
	}
	return true
}

// listsRefAt reports whether ls-remote's output has ref at sha.
func listsRefAt(out, ref, sha string) bool {
	for _, line := range strings.Split(out, "\n") {
		got, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && name == ref && got == sha {
			return true
		}
	}
	return false
}

// Exclude makes sure pattern is a line of <common dir>/info/exclude (idempotent).
func (g *Git) Exclude(ctx context.Context, repo, pattern string) error {
	if pattern == "" || strings.ContainsAny(pattern, "\n\r\x00") {
		return fmt.Errorf("exclude: invalid pattern %q", pattern)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	common, err := g.CommonDir(ctx, repo)
	if err != nil {
		return fmt.Errorf("exclude: %w", err)
	}
	g.excludeMu.Lock()
	defer g.excludeMu.Unlock()
	path := filepath.Join(common, "info", "exclude")
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("exclude: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSuffix(line, "\r") == pattern {
			return nil
		}
	}
	add := pattern + "\n"
	if len(data) > 0 && data[len(data)-1] != '\n' {
		add = "\n" + add
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("exclude: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("exclude: %w", err)
	}
	if _, err := f.WriteString(add); err != nil {
		f.Close()
		return fmt.Errorf("exclude: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("exclude: %w", err)
	}
	return nil
}

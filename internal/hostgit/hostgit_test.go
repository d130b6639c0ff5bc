package hostgit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

func TestNewWritesMinimalGlobalConfig(t *testing.T) {
	state := t.TempDir()
	if _, err := hostgit.New(hostgit.Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(state, "gitconfig"))
	if err != nil {
		t.Fatal(err)
	}
	want := "[user]\n\tname = Trakkar Agent\n\temail = agent@trakkar.invalid\n"
	if string(b) != want {
		t.Fatalf("gitconfig = %q, want %q", b, want)
	}
	if fi, err := os.Stat(filepath.Join(state, "home")); err != nil || !fi.IsDir() {
		t.Fatalf("home dir: %v", err)
	}
	if _, err := hostgit.New(hostgit.Options{}); err == nil {
		t.Fatal("New without StateDir succeeded")
	}
	if _, err := hostgit.New(hostgit.Options{StateDir: state, GitPath: filepath.Join(state, "no-such-git")}); err == nil {
		t.Fatal("New with a missing git succeeded")
	}
}

func TestRepoRootCommonDirRemoteURL(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)

	root, err := g.RepoRoot(c, filepath.Join(f.clone, "src"))
	if err != nil || root != f.clone {
		t.Fatalf("RepoRoot = %q, %v; want %q", root, err, f.clone)
	}
	if _, err := g.RepoRoot(c, t.TempDir()); !errors.Is(err, hostgit.ErrNotARepo) {
		t.Fatalf("RepoRoot(non-repo) err = %v, want ErrNotARepo", err)
	}
	common, err := g.CommonDir(c, f.clone)
	if err != nil || common != filepath.Join(f.clone, ".git") {
		t.Fatalf("CommonDir = %q, %v", common, err)
	}
	u, err := g.RemoteURL(c, f.clone, "origin")
	if err != nil || u != f.origin {
		t.Fatalf("RemoteURL = %q, %v; want %q", u, err, f.origin)
	}
	if _, err := g.RemoteURL(c, f.clone, "upstream"); !errors.Is(err, hostgit.ErrNoRemote) {
		t.Fatalf("RemoteURL(upstream) err = %v, want ErrNoRemote", err)
	}
	if _, err := g.RemoteURL(c, f.clone, "--upload-pack=touch /tmp/x"); err == nil {
		t.Fatal("RemoteURL accepted an option-like remote name")
	}
}

func TestFetchDefaultBranchRemoteBranchExists(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)

	// Someone pushes a new branch and moves origin's HEAD to it.
	other := filepath.Join(t.TempDir(), "other")
	rawGit(t, "/", "clone", "--quiet", f.origin, other)
	rawGit(t, other, "switch", "--quiet", "-c", "develop")
	writeFile(t, filepath.Join(other, "dev.txt"), "dev\n")
	rawGit(t, other, "add", "-A")
	rawGit(t, other, "commit", "--quiet", "-m", "dev")
	rawGit(t, other, "push", "--quiet", "origin", "develop")
	rawGit(t, f.origin, "symbolic-ref", "HEAD", "refs/heads/develop")

	if ok, err := g.RemoteBranchExists(c, f.clone, "origin", "develop"); err != nil || ok {
		t.Fatalf("before fetch: RemoteBranchExists(develop) = %v, %v; want false", ok, err)
	}
	if b, err := g.DefaultBranch(c, f.clone, "origin"); err != nil || b != "main" {
		t.Fatalf("DefaultBranch from clone's origin/HEAD = %q, %v; want main", b, err)
	}
	if err := g.Fetch(c, f.clone, "origin", hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := g.RemoteBranchExists(c, f.clone, "origin", "develop"); err != nil || !ok {
		t.Fatalf("after fetch: RemoteBranchExists(develop) = %v, %v; want true", ok, err)
	}
	if ok, err := g.RemoteBranchExists(c, f.clone, "origin", "nope"); err != nil || ok {
		t.Fatalf("RemoteBranchExists(nope) = %v, %v; want false", ok, err)
	}
	if _, err := g.RemoteBranchExists(c, f.clone, "origin", "-x"); err == nil {
		t.Fatal("RemoteBranchExists accepted '-x'")
	}

	// Without refs/remotes/origin/HEAD the remote is asked (ls-remote --symref).
	rawGit(t, f.clone, "remote", "set-head", "origin", "--delete")
	if b, err := g.DefaultBranch(c, f.clone, "origin"); err != nil || b != "develop" {
		t.Fatalf("DefaultBranch via ls-remote = %q, %v; want develop", b, err)
	}
	// Fetch restores the missing origin/HEAD, so no network is needed afterwards.
	if err := g.Fetch(c, f.clone, "origin", hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	if got := rawGit(t, f.clone, "symbolic-ref", "refs/remotes/origin/HEAD"); got != "refs/remotes/origin/develop" {
		t.Fatalf("origin/HEAD after fetch = %q", got)
	}
	if err := g.Fetch(c, f.clone, "nope", hostgit.Auth{}); !errors.Is(err, hostgit.ErrNoRemote) {
		t.Fatalf("Fetch(nope) err = %v, want ErrNoRemote", err)
	}
}

func TestWorktreeCommitPushLifecycle(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)
	path := filepath.Join(f.clone, ".trakkar-worktrees", "ENG-1")

	wt := addWorktree(c, t, g, f.clone, path, "trakkar/eng-1-fix")
	if wt.Path != path || wt.Branch != "trakkar/eng-1-fix" || wt.Base != f.base {
		t.Fatalf("worktree = %+v; want path %s base %s", wt, path, f.base)
	}
	if filepath.Dir(wt.GitDir) != filepath.Join(f.clone, ".git", "worktrees") {
		t.Fatalf("GitDir = %s, want under .git/worktrees", wt.GitDir)
	}
	if b, err := os.ReadFile(filepath.Join(path, "README.md")); err != nil || string(b) != "hello\n" {
		t.Fatalf("checked out README = %q, %v", b, err)
	}
	// No upstream was configured in the user's repo config.
	if out, _ := rawGitErr(t, f.clone, "config", "--get", "branch.trakkar/eng-1-fix.remote"); strings.TrimSpace(out) != "" {
		t.Fatalf("AddWorktree set up tracking: %q", out)
	}

	committed, sha, err := g.CommitAll(c, wt, "nothing")
	if err != nil || committed || sha != "" {
		t.Fatalf("CommitAll(no change) = %v, %q, %v; want false", committed, sha, err)
	}
	if has, err := g.HasCommitsSince(c, wt, ""); err != nil || has {
		t.Fatalf("HasCommitsSince before commit = %v, %v", has, err)
	}

	writeFile(t, filepath.Join(path, "README.md"), "hello agent\n")
	writeFile(t, filepath.Join(path, "new", "file.txt"), "new\n")
	if err := os.Remove(filepath.Join(path, "old.txt")); err != nil {
		t.Fatal(err)
	}
	msg := "--amend fix the thing\n\nBody with $(touch /tmp/pwned) and `backticks`.\n"
	committed, sha, err = g.CommitAll(c, wt, msg)
	if err != nil || !committed || len(sha) != 40 {
		t.Fatalf("CommitAll = %v, %q, %v", committed, sha, err)
	}
	if got := rawGit(t, f.clone, "log", "-1", "--format=%B", sha); got != strings.TrimSpace(msg) {
		t.Fatalf("commit message = %q, want %q", got, msg)
	}
	if got := rawGit(t, f.clone, "log", "-1", "--format=%an <%ae>|%P", sha); got != "Trakkar Agent <agent@trakkar.invalid>|"+f.base {
		t.Fatalf("author|parent = %q", got)
	}
	wantTree := []string{"README.md", "new/file.txt", "src/main.go"}
	if got := lsTree(t, filepath.Join(f.clone, ".git"), sha); !slices.Equal(got, wantTree) {
		t.Fatalf("tree = %v, want %v", got, wantTree)
	}
	if has, err := g.HasCommitsSince(c, wt, f.base); err != nil || !has {
		t.Fatalf("HasCommitsSince after commit = %v, %v", has, err)
	}

	if err := g.Push(c, f.clone, "origin", wt.Branch, hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	if got := rawGit(t, f.origin, "rev-parse", "refs/heads/trakkar/eng-1-fix"); got != sha {
		t.Fatalf("origin branch = %s, want %s", got, sha)
	}

	// Reopening finds the same admin dir, branch and recorded base.
	again, err := g.OpenWorktree(c, f.clone, path)
	if err != nil {
		t.Fatal(err)
	}
	if again != wt {
		t.Fatalf("OpenWorktree = %+v, want %+v", again, wt)
	}
	if _, err := g.OpenWorktree(c, f.clone, f.clone); err == nil {
		t.Fatal("OpenWorktree accepted the main worktree")
	}
	if _, err := g.OpenWorktree(c, f.clone, t.TempDir()); err == nil {
		t.Fatal("OpenWorktree accepted an unregistered directory")
	}

	if err := g.RemoveWorktree(c, f.clone, wt); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, wt.GitDir} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still exists after RemoveWorktree (%v)", p, err)
		}
	}
	if list := rawGit(t, f.clone, "worktree", "list", "--porcelain"); strings.Contains(list, path) {
		t.Fatalf("worktree still registered:\n%s", list)
	}
}

// An existing task branch is only moved forward: a start point that lacks any
// of its commits (a follow-up's earlier work) is refused and the branch kept.
func TestAddWorktreeNeverDropsBranchCommits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		branch  func(t *testing.T, f fixture) string // sets up trakkar/k-1, returns its tip
		start   string
		wantErr bool
	}{
		{"behind the start point moves forward", func(t *testing.T, f fixture) string {
			rawGit(t, f.clone, "branch", "trakkar/k-1", "origin/main")
			return f.base
		}, "origin/main", false},
		{"ahead of the start point is refused", func(t *testing.T, f fixture) string {
			rawGit(t, f.clone, "commit", "--quiet", "--allow-empty", "-m", "earlier work")
			rawGit(t, f.clone, "branch", "trakkar/k-1", "HEAD")
			return rawGit(t, f.clone, "rev-parse", "HEAD")
		}, "origin/main", true},
		{"continuing from its own tip", func(t *testing.T, f fixture) string {
			rawGit(t, f.clone, "commit", "--quiet", "--allow-empty", "-m", "earlier work")
			rawGit(t, f.clone, "branch", "trakkar/k-1", "HEAD")
			return rawGit(t, f.clone, "rev-parse", "HEAD")
		}, "trakkar/k-1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, g, c := newRepo(t)
			tip := tc.branch(t, f)
			wt, err := g.AddWorktree(c, f.clone, filepath.Join(t.TempDir(), "wt"), "trakkar/k-1", tc.start)
			if tc.wantErr {
				if !errors.Is(err, hostgit.ErrWouldDropCommits) {
					t.Fatalf("err = %v, want ErrWouldDropCommits", err)
				}
				if got := rawGit(t, f.clone, "rev-parse", "trakkar/k-1"); got != tip {
					t.Fatalf("refused add still moved the branch: %s, was %s", got, tip)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := rawGit(t, f.clone, "rev-parse", tc.start)
			if got := rawGit(t, f.clone, "rev-parse", "trakkar/k-1"); got != want || wt.Base != want {
				t.Fatalf("branch = %s base = %s; want %s", got, wt.Base, want)
			}
			// The branch is now checked out there; a second worktree on it must fail.
			if _, err := g.AddWorktree(c, f.clone, filepath.Join(t.TempDir(), "wt2"), "trakkar/k-1", tc.start); err == nil {
				t.Fatal("second worktree on a checked-out branch succeeded")
			}
		})
	}
}

func TestAddWorktreeRejectsBadInput(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)
	canary := filepath.Join(t.TempDir(), "pwned")
	cases := []struct{ name, branch, start string }{
		{"option branch", "-b", "origin/main"},
		{"upload-pack start", "trakkar/x", "--upload-pack=touch " + canary},
		{"newline branch", "trakkar/x\ny", "origin/main"},
		{"dotdot branch", "trakkar/../x", "origin/main"},
		{"missing start", "trakkar/x", "origin/nope"},
		{"space in start", "trakkar/x", "origin/main --orphan"},
	}
	for _, tc := range cases {
		if _, err := g.AddWorktree(c, f.clone, filepath.Join(t.TempDir(), "wt"), tc.branch, tc.start); err == nil {
			t.Errorf("%s: AddWorktree(%q, %q) succeeded", tc.name, tc.branch, tc.start)
		}
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("argument injection ran a command")
	}
}

// excludeFixture is a clone whose info/exclude holds content.
func excludeFixture(t *testing.T, content string) (f fixture, g *hostgit.Git, exclude string) {
	t.Helper()
	f, g = newFixture(t), newGit(t)
	exclude = filepath.Join(f.clone, ".git", "info", "exclude")
	writeFile(t, exclude, content)
	return f, g, exclude
}

func TestExcludeIdempotent(t *testing.T) {
	t.Parallel()
	f, g, exclude := excludeFixture(t, "# user line without newline")
	for i := 0; i < 3; i++ {
		if err := g.Exclude(context.Background(), f.clone, "/.trakkar-worktrees/"); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Exclude(context.Background(), f.clone, "*.log"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exclude)
	if err != nil {
		t.Fatal(err)
	}
	want := "# user line without newline\n/.trakkar-worktrees/\n*.log\n"
	if string(b) != want {
		t.Fatalf("exclude = %q, want %q", b, want)
	}
	// And git honours it: an untracked file under the worktree root is ignored.
	writeFile(t, filepath.Join(f.clone, ".trakkar-worktrees", "x", "f"), "x")
	if st := rawGit(t, f.clone, "status", "--porcelain"); st != "" {
		t.Fatalf("status not clean: %q", st)
	}
	for _, bad := range []string{"", "a\nb", "a\rb"} {
		if err := g.Exclude(context.Background(), f.clone, bad); err == nil {
			t.Errorf("Exclude(%q) succeeded", bad)
		}
	}
}

// A cancelled context stops Exclude before it touches the exclude file.
func TestExcludeHonoursContext(t *testing.T) {
	t.Parallel()
	f, g, exclude := excludeFixture(t, "keep\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Exclude(ctx, f.clone, "/.trakkar-worktrees/"); err == nil {
		t.Fatal("Exclude with a cancelled context succeeded")
	}
	if b, err := os.ReadFile(exclude); err != nil || string(b) != "keep\n" {
		t.Fatalf("exclude = %q, %v; want it untouched", b, err)
	}
}

func TestRemoveWorktreeSurvivesHostileContent(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/k", "k")
	// The agent rewrites the pointer file (git refuses to remove such a worktree),
	// leaves a read-only directory and a symlink to a file outside that must survive.
	outside := filepath.Join(t.TempDir(), "keep.txt")
	writeFile(t, outside, "keep")
	writeFile(t, filepath.Join(wt.Path, ".git"), "gitdir: /nonexistent\n")
	writeFile(t, filepath.Join(wt.Path, "ro", "f"), "x")
	if err := os.Symlink(outside, filepath.Join(wt.Path, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(wt.Path, "ro"), 0o500); err != nil {
		t.Fatal(err)
	}
	if err := g.RemoveWorktree(c, f.clone, wt); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{wt.Path, wt.GitDir} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still exists (%v)", p, err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Fatalf("symlink target damaged: %q, %v", b, err)
	}
}

func TestCommitAllRejectsForeignGitDir(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/k", "")
	cases := map[string]hostgit.Worktree{
		"gitdir inside tree": {Path: wt.Path, GitDir: filepath.Join(wt.Path, ".evil"), Branch: wt.Branch},
		"main gitdir":        {Path: wt.Path, GitDir: filepath.Join(f.clone, ".git"), Branch: wt.Branch},
		"relative":           {Path: "wt", GitDir: wt.GitDir},
	}
	for name, bad := range cases {
		if _, _, err := g.CommitAll(c, bad, "x"); err == nil {
			t.Errorf("%s: CommitAll succeeded", name)
		}
	}
	if _, _, err := g.CommitAll(c, wt, "  \n"); err == nil {
		t.Error("CommitAll accepted an empty message")
	}
}

func TestRemoveWorktreeRefusesUnregisteredPaths(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)
	for _, p := range []string{f.clone, filepath.Join(f.clone, "src"), t.TempDir()} {
		if err := g.RemoveWorktree(c, f.clone, hostgit.Worktree{Path: p}); err == nil {
			t.Errorf("RemoveWorktree(%s) succeeded", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s was deleted: %v", p, err)
		}
	}
	// A path that no longer exists is already removed.
	if err := g.RemoveWorktree(c, f.clone, hostgit.Worktree{Path: filepath.Join(t.TempDir(), "gone")}); err != nil {
		t.Fatalf("RemoveWorktree(missing) = %v", err)
	}
}

func TestCommitAllChecksBranch(t *testing.T) {
	t.Parallel()
	_, g, c, wt := newWorktree(t, "trakkar/a", "")
	writeFile(t, filepath.Join(wt.Path, "x"), "x")
	wrong := wt
	wrong.Branch = "main"
	if _, _, err := g.CommitAll(c, wrong, "x"); err == nil {
		t.Fatal("CommitAll committed with a mismatched branch")
	}
	if ok, _, err := g.CommitAll(c, wt, "x"); err != nil || !ok {
		t.Fatalf("CommitAll = %v, %v", ok, err)
	}
}

// Cancellation kills git and everything it started (transport helpers, ssh), promptly.
func TestContextCancelKillsProcessGroup(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hang := filepath.Join(t.TempDir(), "git")
	writeExec(t, hang, "#!/bin/sh\nsleep 30 &\nwait\n")
	g := newGit(t, func(o *hostgit.Options) { o.GitPath = hang })
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := g.RepoRoot(c, f.clone)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 15*time.Second { // of the child's 30 s
		t.Fatalf("cancellation took %s; the child kept the pipes open", d)
	}
}

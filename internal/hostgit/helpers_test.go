package hostgit_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// rawGit runs an unhardened git (isolated only from the machine's own config) for test
// setup and for the "control" runs that prove a canary is live.
func rawGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := rawGitErr(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func rawGitErr(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = rawEnv(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rawHome is set up once by TestMain.
var rawHome string

func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "hostgit-test-home-")
	if err != nil {
		panic(err)
	}
	cfg := "[user]\n\tname = Test User\n\temail = test@example.invalid\n[init]\n\tdefaultBranch = main\n"
	if err := os.WriteFile(filepath.Join(home, "gitconfig"), []byte(cfg), 0o644); err != nil {
		panic(err)
	}
	rawHome = home
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}

func rawEnv(t testing.TB) []string {
	t.Helper()
	home := rawHome
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, "gitconfig"), "GIT_TERMINAL_PROMPT=0")
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeExec(t testing.TB, path, content string) {
	t.Helper()
	writeFile(t, path, content)
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func newGit(t testing.TB, opts ...func(*hostgit.Options)) *hostgit.Git {
	t.Helper()
	o := hostgit.Options{StateDir: t.TempDir(), Logger: zaptest.NewLogger(t)}
	for _, f := range opts {
		f(&o)
	}
	g, err := hostgit.New(o)
	if err != nil {
		t.Fatalf("hostgit.New: %v", err)
	}
	return g
}

// fixture is a bare origin with one commit on main and a clone of it.
type fixture struct {
	origin string // bare repo path (used as the remote URL)
	clone  string // the user's checkout
	base   string // origin/main commit
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin.git")
	seed := filepath.Join(dir, "seed")
	rawGit(t, dir, "init", "--quiet", "--bare", origin)
	rawGit(t, dir, "init", "--quiet", seed)
	writeFile(t, filepath.Join(seed, "README.md"), "hello\n")
	writeFile(t, filepath.Join(seed, "src", "main.go"), "package main\n")
	writeFile(t, filepath.Join(seed, "old.txt"), "to be deleted\n")
	rawGit(t, seed, "add", "-A")
	rawGit(t, seed, "commit", "--quiet", "-m", "initial")
	rawGit(t, seed, "push", "--quiet", origin, "main")
	clone := filepath.Join(dir, "clone")
	rawGit(t, dir, "clone", "--quiet", origin, clone)
	return fixture{origin: origin, clone: clone, base: rawGit(t, clone, "rev-parse", "origin/main")}
}

// canaryScript returns an executable that records its name in dir when run and
// otherwise behaves like cat (so a filter canary doesn't break the command).
func canaryScript(t testing.TB, binDir, logDir, name string) string {
	t.Helper()
	p := filepath.Join(binDir, name)
	writeExec(t, p, "#!/bin/sh\necho fired > '"+filepath.Join(logDir, name)+"'\ncat\nexit 0\n")
	return p
}

// fired lists canaries that wrote into logDir.
func fired(t testing.TB, logDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func lsTree(t testing.TB, gitDir, rev string) []string {
	t.Helper()
	out := rawGit(t, "/", "--git-dir="+gitDir, "ls-tree", "-r", "--name-only", "--full-tree", rev)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// addWorktree adds a worktree of origin/main on branch at path, failing the test on error.
func addWorktree(ctx context.Context, t testing.TB, g *hostgit.Git, repo, path, branch string) hostgit.Worktree {
	t.Helper()
	wt, err := g.AddWorktree(ctx, repo, path, branch, "origin/main")
	if err != nil {
		t.Fatalf("AddWorktree %s: %v", branch, err)
	}
	return wt
}

// newRepo is how most tests begin: a fixture, a hardened Git and a bounded context.
func newRepo(t testing.TB) (fixture, *hostgit.Git, context.Context) {
	t.Helper()
	return newFixture(t), newGit(t), ctx(t)
}

// newWorktree is newRepo plus a worktree of origin/main on branch, in the clone's
// .trakkar-worktrees/name, or in a fresh temporary folder when name is "".
func newWorktree(t testing.TB, branch, name string) (fixture, *hostgit.Git, context.Context, hostgit.Worktree) {
	t.Helper()
	f, g, c := newRepo(t)
	path := filepath.Join(t.TempDir(), "wt")
	if name != "" {
		path = filepath.Join(f.clone, ".trakkar-worktrees", name)
	}
	return f, g, c, addWorktree(c, t, g, f.clone, path, branch)
}

// assertNoneFired fails the test if any canary in logDir ran during what.
func assertNoneFired(t testing.TB, logDir, what string) {
	t.Helper()
	if got := fired(t, logDir); len(got) != 0 {
		t.Fatalf("canaries fired during %s: %v", what, got)
	}
}

// assertFired is the control half of a canary test: unless every named canary ran,
// the canaries are not live and the test proves nothing.
func assertFired(t testing.TB, logDir string, want ...string) {
	t.Helper()
	got := fired(t, logDir)
	for _, name := range want {
		if !slices.Contains(got, name) {
			t.Errorf("control: canary %s did not fire (fired: %v); the test proves nothing", name, got)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// pushSmudgeSeed commits, in the user's clone, content that selects the "canary" filter
// on checkout, and pushes it to origin.
func pushSmudgeSeed(t testing.TB, clone string) {
	t.Helper()
	writeFile(t, filepath.Join(clone, ".gitattributes"), "seed.dat filter=canary\n")
	writeFile(t, filepath.Join(clone, "seed.dat"), "seed\n")
	rawGit(t, clone, "add", "-A")
	rawGit(t, clone, "commit", "--quiet", "-m", "attrs")
	rawGit(t, clone, "push", "--quiet", "origin", "main")
}

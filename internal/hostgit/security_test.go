package hostgit_test

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// Each canary test runs the hardened operation first and asserts nothing fired, then
// runs the same operation with plain git ("control") and asserts the canary does fire,
// so the test would fail if the protection were removed.

// G1: the agent replaces the worktree's .git pointer with one to its own gitdir whose
// config names an fsmonitor hook and which carries commit hooks.
func TestG1PlantedGitPointerIsIgnored(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/g1", "g1")
	bin, logs := t.TempDir(), t.TempDir()
	fsmonitor := canaryScript(t, bin, logs, "fsmonitor")

	evil := filepath.Join(wt.Path, ".evil")
	rawGit(t, "/", "init", "--quiet", "--bare", evil)
	rawGit(t, "/", "--git-dir="+evil, "config", "core.bare", "false")
	rawGit(t, "/", "--git-dir="+evil, "config", "core.fsmonitor", fsmonitor)
	for _, h := range []string{"pre-commit", "post-commit"} {
		canaryScript(t, filepath.Join(evil, "hooks"), logs, h)
	}
	writeFile(t, filepath.Join(wt.Path, ".git"), "gitdir: .evil\n")
	writeFile(t, filepath.Join(wt.Path, "agent.txt"), "agent work\n")

	committed, sha, err := g.CommitAll(c, wt, "agent work")
	if err != nil || !committed {
		t.Fatalf("CommitAll = %v, %q, %v", committed, sha, err)
	}
	assertNoneFired(t, logs, "CommitAll")
	trusted := filepath.Join(f.clone, ".git")
	if got := rawGit(t, f.clone, "rev-parse", "refs/heads/trakkar/g1"); got != sha {
		t.Fatalf("trusted branch = %s, want %s", got, sha)
	}
	tree := lsTree(t, trusted, sha)
	if !slices.Contains(tree, "agent.txt") || !slices.Contains(tree, "README.md") {
		t.Fatalf("commit misses the agent's or the base's files: %v", tree)
	}
	for _, p := range tree {
		if p == ".git" || strings.HasSuffix(p, "/.git") {
			t.Fatalf("commit contains a .git path: %v", tree)
		}
	}
	if got := rawGit(t, f.clone, "show", sha+":agent.txt"); got != "agent work" {
		t.Fatalf("agent.txt in commit = %q", got)
	}
	if _, err := rawGitErr(t, "/", "--git-dir="+evil, "rev-parse", "--verify", "HEAD"); err == nil {
		t.Fatal("the commit went into the planted gitdir")
	}

	// Control: discovery through the planted pointer runs the payload.
	_, _ = rawGitErr(t, wt.Path, "status")
	assertFired(t, logs, "fsmonitor")
}

// G2: husky-style relative core.hooksPath in the user's repo config, hook scripts
// committed in the repo (so the agent can edit them), plus hooks in the common dir.
func TestG2HooksNeverRun(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)
	logs := t.TempDir()
	hooks := []string{"pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "pre-push",
		"post-checkout", "reference-transaction", "post-index-change", "pre-auto-gc"}
	for _, h := range hooks {
		canaryScript(t, filepath.Join(f.clone, ".husky"), logs, h)
	}
	// Commit the hooks before they can fire, then arm them: .husky via the repo config,
	// and canaries in the common dir's hooks/ as well.
	rawGit(t, f.clone, "-c", "core.hooksPath=/dev/null", "add", "-A")
	rawGit(t, f.clone, "-c", "core.hooksPath=/dev/null", "commit", "--quiet", "-m", "husky")
	rawGit(t, f.clone, "-c", "core.hooksPath=/dev/null", "push", "--quiet", "origin", "main")
	for _, h := range hooks {
		writeExec(t, filepath.Join(f.clone, ".git", "hooks", h),
			"#!/bin/sh\necho fired > '"+filepath.Join(logs, "common-"+h)+"'\nexit 0\n")
	}
	rawGit(t, f.clone, "config", "core.hooksPath", ".husky")

	if err := g.Fetch(c, f.clone, "origin", hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	wt := addWorktree(c, t, g, f.clone, filepath.Join(f.clone, ".trakkar-worktrees", "g2"), "trakkar/g2")
	writeFile(t, filepath.Join(wt.Path, "agent.txt"), "x\n")
	if ok, _, err := g.CommitAll(c, wt, "agent"); err != nil || !ok {
		t.Fatalf("CommitAll = %v, %v", ok, err)
	}
	if err := g.Push(c, f.clone, "origin", wt.Branch, hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	if err := g.RemoveWorktree(c, f.clone, wt); err != nil {
		t.Fatal(err)
	}
	assertNoneFired(t, logs, "CommitAll, Push and RemoveWorktree")

	// Control: the same steps with plain git run the hooks (even with --no-verify).
	ctl := filepath.Join(f.clone, ".trakkar-worktrees", "control")
	rawGit(t, f.clone, "worktree", "add", "--quiet", "-b", "control", ctl, "origin/main")
	writeFile(t, filepath.Join(ctl, "agent.txt"), "x\n")
	rawGit(t, ctl, "add", "-A")
	_, _ = rawGitErr(t, ctl, "commit", "--no-verify", "-m", "control")
	_, _ = rawGitErr(t, ctl, "commit", "--allow-empty", "-m", "control 2")
	_, _ = rawGitErr(t, ctl, "push", "origin", "control")
	assertFired(t, logs, "pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "pre-push", "post-checkout")
}

// G3: the user's repo config defines filter and diff drivers (directly and through an
// include); an agent-written .gitattributes selects them.
func TestG3FilterAndTextconvDriversNeverRun(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)
	bin, logs := t.TempDir(), t.TempDir()

	pushSmudgeSeed(t, f.clone)

	set := func(key, val string) { rawGit(t, f.clone, "config", key, val) }
	for _, drv := range []string{"canary", "lfs", "a.b=c"} {
		set("filter."+drv+".clean", canaryScript(t, bin, logs, drv+"-clean"))
		set("filter."+drv+".smudge", canaryScript(t, bin, logs, drv+"-smudge"))
		set("filter."+drv+".required", "true")
	}
	set("diff.canary.textconv", canaryScript(t, bin, logs, "textconv"))
	inc := filepath.Join(t.TempDir(), "included.gitconfig")
	writeFile(t, inc, "[filter \"inc\"]\n\tclean = "+canaryScript(t, bin, logs, "inc-clean")+"\n")
	set("include.path", inc)

	if err := g.Fetch(c, f.clone, "origin", hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	wt := addWorktree(c, t, g, f.clone, filepath.Join(f.clone, ".trakkar-worktrees", "g3"), "trakkar/g3")
	writeFile(t, filepath.Join(wt.Path, ".gitattributes"),
		"* filter=canary diff=canary\n*.bin filter=lfs\nweird.txt filter=a.b=c\ninc.txt filter=inc\n")
	files := map[string]string{"a.txt": "a\n", "x.bin": "binary\n", "weird.txt": "w\n", "inc.txt": "i\n"}
	for name, content := range files {
		writeFile(t, filepath.Join(wt.Path, name), content)
	}
	ok, sha, err := g.CommitAll(c, wt, "agent")
	if err != nil || !ok {
		t.Fatalf("CommitAll = %v, %v", ok, err)
	}
	assertNoneFired(t, logs, "CommitAll")
	for name, content := range files {
		if got := rawGit(t, f.clone, "-c", "core.hooksPath=/dev/null", "cat-file", "blob", sha+":"+name); got+"\n" != content {
			t.Errorf("%s committed as %q, want %q", name, got, content)
		}
	}

	// Control: plain git with the same trusted gitdir runs the drivers.
	for name := range files {
		writeFile(t, filepath.Join(wt.Path, name), "changed "+name+"\n")
	}
	wtArgs := []string{"--git-dir=" + wt.GitDir, "--work-tree=" + wt.Path}
	_, _ = rawGitErr(t, "/", append(wtArgs, "add", "-A")...)
	_, _ = rawGitErr(t, "/", append(wtArgs, "diff", "--cached")...)
	assertFired(t, logs, "canary-clean", "lfs-clean", "a.b=c-clean", "inc-clean", "textconv")
}

// The smudge side: a fresh checkout through AddWorktree runs no smudge filter.
func TestG3SmudgeNotRunOnCheckout(t *testing.T) {
	t.Parallel()
	f, g, c := newRepo(t)
	bin, logs := t.TempDir(), t.TempDir()
	pushSmudgeSeed(t, f.clone)
	rawGit(t, f.clone, "config", "filter.canary.smudge", canaryScript(t, bin, logs, "smudge"))
	rawGit(t, f.clone, "config", "filter.canary.required", "true")
	if err := g.Fetch(c, f.clone, "origin", hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.AddWorktree(c, f.clone, filepath.Join(t.TempDir(), "wt"), "trakkar/s", "origin/main"); err != nil {
		t.Fatal(err)
	}
	assertNoneFired(t, logs, "AddWorktree")
	rawGit(t, f.clone, "worktree", "add", "--quiet", "-b", "control", filepath.Join(t.TempDir(), "ctl"), "origin/main")
	assertFired(t, logs, "smudge")
}

const testToken = "ghp_CanaryToken0123456789abcdef"

var tokenForms = []string{
	testToken,
	base64.StdEncoding.EncodeToString([]byte("x-access-token:" + testToken)),
}

// argvLogger writes a git wrapper that appends its argv to log and execs real git.
func argvLogger(t *testing.T, log string, extra string) string {
	t.Helper()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "git")
	writeExec(t, p, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '"+log+"'\n"+extra+
		"exec '"+real+"' \"$@\"\n")
	return p
}

// cloneFromFakeGitHub serves acme/app from a fake GitHub that requires testToken and
// clones it (the clone needs no token).
func cloneFromFakeGitHub(t *testing.T) (*fakegithub.Server, string) {
	t.Helper()
	fg := fakegithub.New(t, testToken)
	url := fg.AddRepo(t, "acme", "app", map[string]string{"README.md": "hi\n"})
	clone := filepath.Join(t.TempDir(), "clone")
	rawGit(t, "/", "clone", "--quiet", url, clone)
	return fg, clone
}

func TestTokenNeverOnArgvAndPushNeedsIt(t *testing.T) {
	t.Parallel()
	fg, clone := cloneFromFakeGitHub(t)

	log := filepath.Join(t.TempDir(), "argv.log")
	g := newGit(t, func(o *hostgit.Options) { o.GitPath = argvLogger(t, log, "") })
	c := ctx(t)
	auth := hostgit.Auth{Token: testToken}

	if err := g.Fetch(c, clone, "origin", auth); err != nil {
		t.Fatal(err)
	}
	wt, err := g.AddWorktree(c, clone, filepath.Join(t.TempDir(), "wt"), "trakkar/tok", "origin/main")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(wt.Path, "x.txt"), "x\n")
	_, sha, err := g.CommitAll(c, wt, "x")
	if err != nil {
		t.Fatal(err)
	}
	err = g.Push(c, clone, "origin", wt.Branch, hostgit.Auth{})
	if err == nil {
		t.Fatal("push without a token succeeded")
	}
	if err := g.Push(c, clone, "origin", wt.Branch, hostgit.Auth{Token: "wrong-" + testToken}); err == nil {
		t.Fatal("push with a wrong token succeeded")
	} else if strings.Contains(err.Error(), testToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if err := g.Push(c, clone, "origin", wt.Branch, auth); err != nil {
		t.Fatal(err)
	}
	if got, _ := fg.Branch(t, "acme", "app", wt.Branch); got != sha {
		t.Fatalf("pushed branch = %s, want %s", got, sha)
	}

	argv, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(argv), "push") {
		t.Fatalf("argv log does not record the push; wrapper not used:\n%s", argv)
	}
	for _, form := range append(tokenForms, "x-access-token", "Authorization") {
		if strings.Contains(string(argv), form) {
			t.Fatalf("argv contains %q", form)
		}
	}
}

func TestTokenRedactedFromErrors(t *testing.T) {
	t.Parallel()
	_, clone := cloneFromFakeGitHub(t)
	// A commit the remote lacks: a failed push of what the remote already
	// holds counts as published.
	rawGit(t, clone, "commit", "--quiet", "--allow-empty", "-m", "local only")

	// A git that echoes the credential it was given, in both forms, and fails.
	leak := `case "$*" in *" push --no-verify"*|*" fetch --no-recurse-submodules"*)
  printf 'fatal: header %s\n' "$GIT_CONFIG_VALUE_0" >&2
  printf '%s' "$GIT_CONFIG_VALUE_0" | sed 's/.* //' | base64 -d >&2
  exit 128;;
esac
`
	g := newGit(t, func(o *hostgit.Options) { o.GitPath = argvLogger(t, filepath.Join(t.TempDir(), "log"), leak) })
	c := ctx(t)
	for name, err := range map[string]error{
		"push":  g.Push(c, clone, "origin", "main", hostgit.Auth{Token: testToken}),
		"fetch": g.Fetch(c, clone, "origin", hostgit.Auth{Token: testToken}),
	} {
		if err == nil {
			t.Fatalf("%s: leaky git did not fail", name)
		}
		msg := err.Error()
		if !strings.Contains(msg, "[REDACTED]") {
			t.Fatalf("%s: error does not show the redaction, the leak path was not exercised: %v", name, msg)
		}
		for _, form := range tokenForms {
			if strings.Contains(msg, form) {
				t.Fatalf("%s: error leaks %q: %v", name, form, msg)
			}
		}
	}
}

// A parent environment that tries to steer git is ignored.
func TestParentGitEnvironmentIgnored(t *testing.T) {
	f := newFixture(t)
	bin, logs := t.TempDir(), t.TempDir()
	hooks := filepath.Join(bin, "hooks")
	canaryScript(t, hooks, logs, "pre-commit")
	canaryScript(t, hooks, logs, "post-commit")
	t.Setenv("GIT_DIR", "/nonexistent")
	t.Setenv("GIT_WORK_TREE", "/nonexistent")
	t.Setenv("GIT_INDEX_FILE", filepath.Join(bin, "evil-index"))
	t.Setenv("GIT_CONFIG_PARAMETERS", "'user.name'='Evil Parent' 'core.hookspath'='"+hooks+"'")
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "user.email")
	t.Setenv("GIT_CONFIG_VALUE_0", "evil@parent.invalid")
	t.Setenv("GIT_AUTHOR_NAME", "Evil Author")
	t.Setenv("GIT_COMMITTER_EMAIL", "evil@committer.invalid")
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(bin, "evil.gitconfig"))
	writeFile(t, filepath.Join(bin, "evil.gitconfig"), "[core]\n\tfsmonitor = "+canaryScript(t, bin, logs, "fsmonitor")+"\n")

	g := newGit(t)
	c := ctx(t)
	wt := addWorktree(c, t, g, f.clone, filepath.Join(t.TempDir(), "wt"), "trakkar/env")
	writeFile(t, filepath.Join(wt.Path, "x.txt"), "x\n")
	_, sha, err := g.CommitAll(c, wt, "env")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Push(c, f.clone, "origin", wt.Branch, hostgit.Auth{}); err != nil {
		t.Fatal(err)
	}
	if got := rawGit(t, f.clone, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha); got != "Trakkar Agent <agent@trakkar.invalid>|Trakkar Agent <agent@trakkar.invalid>" {
		t.Fatalf("identity = %q", got)
	}
	assertNoneFired(t, logs, "git steered by the parent environment")
	if _, err := os.Stat(filepath.Join(bin, "evil-index")); err == nil {
		t.Fatal("parent GIT_INDEX_FILE was used")
	}
}

// An agent-created nested repository with its own fsmonitor, filter and hooks runs
// nothing during CommitAll. It is recorded as a gitlink, which the import policy (not
// this package) must reject.
func TestNestedRepoRunsNothing(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/n", "")
	bin, logs := t.TempDir(), t.TempDir()
	sub := filepath.Join(wt.Path, "sub")
	rawGit(t, "/", "init", "--quiet", sub)
	writeFile(t, filepath.Join(sub, "x"), "x")
	rawGit(t, sub, "add", "x")
	rawGit(t, sub, "commit", "--quiet", "-m", "x")
	rawGit(t, sub, "config", "core.fsmonitor", canaryScript(t, bin, logs, "fsmonitor"))
	rawGit(t, sub, "config", "filter.z.clean", canaryScript(t, bin, logs, "clean"))
	writeFile(t, filepath.Join(sub, ".gitattributes"), "* filter=z\n")
	writeFile(t, filepath.Join(sub, "x"), "changed")
	for _, h := range []string{"pre-commit", "post-commit", "post-index-change", "reference-transaction"} {
		canaryScript(t, filepath.Join(sub, ".git", "hooks"), logs, h)
	}
	ok, sha, err := g.CommitAll(c, wt, "nested")
	if err != nil || !ok {
		t.Fatalf("CommitAll = %v, %v", ok, err)
	}
	assertNoneFired(t, logs, "CommitAll of a nested repo")
	if mode := rawGit(t, f.clone, "ls-tree", sha, "sub"); !strings.HasPrefix(mode, "160000 commit") {
		t.Fatalf("sub recorded as %q, want a gitlink", mode)
	}
	_, _ = rawGitErr(t, sub, "status")
	assertFired(t, logs, "fsmonitor")
}

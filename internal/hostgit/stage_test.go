package hostgit_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
)

func byPath(changes []hostgit.Change) map[string]hostgit.Change {
	m := make(map[string]hostgit.Change, len(changes))
	for _, c := range changes {
		m[c.Path] = c
	}
	return m
}

func rulesFor(r importpolicy.Report, path string) []string {
	var out []string
	for _, v := range r.Violations {
		if v.Path == path {
			out = append(out, v.Rule)
		}
	}
	return out
}

// G4: the agent writes every kind of hostile content; StageAll reports it faithfully,
// the import policy refuses each path with the right rule, Unstage leaves HEAD and
// the files alone, and once the hostile content is gone the clean change commits.
func TestStageAllHostileContentRefused(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/g4", "g4")
	// Filter drivers and index hooks the user's repo defines must not run while staging.
	bin, logs := t.TempDir(), t.TempDir()
	rawGit(t, f.clone, "config", "filter.x.clean", canaryScript(t, bin, logs, "clean"))
	canaryScript(t, filepath.Join(f.clone, ".git", "hooks"), logs, "post-index-change")
	writeFile(t, filepath.Join(wt.Path, ".gitattributes"), "*.go filter=x\n")

	// The clean part of the agent's work.
	writeFile(t, filepath.Join(wt.Path, "README.md"), "hello agent\n")
	writeFile(t, filepath.Join(wt.Path, "src", "new.go"), "package main\n")
	odd := "docs/new\nline ünï.txt"
	writeFile(t, filepath.Join(wt.Path, odd), "odd name\n")
	if err := os.Remove(filepath.Join(wt.Path, "old.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../README.md", filepath.Join(wt.Path, "src", "readme-link")); err != nil {
		t.Fatal(err)
	}

	// The hostile part.
	sub := filepath.Join(wt.Path, "sub")
	rawGit(t, "/", "init", "--quiet", sub)
	writeFile(t, filepath.Join(sub, "x"), "x")
	rawGit(t, sub, "add", "x")
	rawGit(t, sub, "commit", "--quiet", "-m", "x")
	writeFile(t, filepath.Join(wt.Path, "evil.git", "HEAD"), "ref: refs/heads/main\n")
	writeFile(t, filepath.Join(wt.Path, "evil.git", "config"), "[core]\n\tbare = true\n\tfsmonitor = /tmp/payload\n")
	writeFile(t, filepath.Join(wt.Path, "evil.git", "objects", "info", "packs"), "\n")
	writeFile(t, filepath.Join(wt.Path, ".GIT", "config"), "[core]\n\tfsmonitor = /tmp/payload\n")
	writeFile(t, filepath.Join(wt.Path, "git~1", "config"), "[core]\n")
	writeFile(t, filepath.Join(wt.Path, ".g\u200cit", "config"), "[core]\n")
	writeFile(t, filepath.Join(wt.Path, ".gitmodules"),
		"[submodule \"../../hooks\"]\n\tpath = mod\n\turl = https://example.invalid/x.git\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(wt.Path, "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../..", filepath.Join(wt.Path, "main-checkout")); err != nil {
		t.Fatal(err)
	}
	const bigSize = 21 << 20
	big, err := os.Create(filepath.Join(wt.Path, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(bigSize); err != nil {
		t.Fatal(err)
	}
	big.Close()
	writeFile(t, filepath.Join(wt.Path, ".github", "workflows", "ci.yml"), "on: push\n")

	head := rawGit(t, f.clone, "rev-parse", "refs/heads/trakkar/g4")
	changes, err := g.StageAll(c, wt)
	if err != nil {
		t.Fatalf("StageAll: %v", err)
	}
	assertNoneFired(t, logs, "StageAll")
	got := byPath(changes)
	t.Logf("StageAll returned %d changes:", len(changes))
	for _, ch := range changes {
		t.Logf("  %q %s %s size=%d link=%q", ch.Path, ch.Status, ch.Mode, ch.Size, ch.LinkTarget)
	}
	want := map[string]hostgit.Change{
		"README.md":                {Path: "README.md", Status: "M", Mode: hostgit.ModeFile, Size: int64(len("hello agent\n"))},
		"src/new.go":               {Path: "src/new.go", Status: "A", Mode: hostgit.ModeFile, Size: int64(len("package main\n"))},
		"src/readme-link":          {Path: "src/readme-link", Status: "A", Mode: hostgit.ModeSymlink, Size: 12, LinkTarget: "../README.md"},
		odd:                        {Path: odd, Status: "A", Mode: hostgit.ModeFile, Size: int64(len("odd name\n"))},
		"old.txt":                  {Path: "old.txt", Status: "D"},
		".gitattributes":           {Path: ".gitattributes", Status: "A", Mode: hostgit.ModeFile, Size: int64(len("*.go filter=x\n"))},
		"sub":                      {Path: "sub", Status: "A", Mode: hostgit.ModeGitlink},
		"evil.git/HEAD":            {Path: "evil.git/HEAD", Status: "A", Mode: hostgit.ModeFile, Size: int64(len("ref: refs/heads/main\n"))},
		".GIT/config":              {Path: ".GIT/config", Status: hostgit.StatusNotStaged},
		"git~1/config":             {Path: "git~1/config", Status: hostgit.StatusNotStaged},
		".g\u200cit/config":        {Path: ".g\u200cit/config", Status: hostgit.StatusNotStaged},
		"passwd":                   {Path: "passwd", Status: "A", Mode: hostgit.ModeSymlink, Size: 11, LinkTarget: "/etc/passwd"},
		"main-checkout":            {Path: "main-checkout", Status: "A", Mode: hostgit.ModeSymlink, Size: 5, LinkTarget: "../.."},
		"big.bin":                  {Path: "big.bin", Status: "A", Mode: hostgit.ModeFile, Size: bigSize},
		".github/workflows/ci.yml": {Path: ".github/workflows/ci.yml", Status: "A", Mode: hostgit.ModeFile, Size: 9},
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("change %q = %+v, want %+v", p, got[p], w)
		}
	}
	if _, ok := got["evil.git/config"]; !ok {
		t.Error("evil.git/config missing from the changes")
	}
	if _, ok := got[".gitmodules"]; !ok {
		t.Error(".gitmodules missing from the changes")
	}

	report := importpolicy.Check(changes, importpolicy.Options{})
	t.Logf("policy: %v", report)
	wantRules := map[string][]string{
		"sub":                      {importpolicy.RuleGitlink},
		".GIT/config":              {importpolicy.RuleDotGit},
		"git~1/config":             {importpolicy.RuleDotGit},
		".g\u200cit/config":        {importpolicy.RuleDotGit},
		".gitmodules":              {importpolicy.RuleGitmodules},
		"passwd":                   {importpolicy.RuleSymlinkEscape},
		"main-checkout":            {importpolicy.RuleSymlinkEscape},
		"big.bin":                  {importpolicy.RuleTooLarge},
		".github/workflows/ci.yml": {importpolicy.RuleProtected},
	}
	for _, ch := range changes {
		if r := rulesFor(report, ch.Path); !slices.Equal(r, wantRules[ch.Path]) {
			t.Errorf("rules for %q = %v, want %v", ch.Path, r, wantRules[ch.Path])
		}
	}
	// The embedded bare repository is refused as a folder, not per file.
	if r := rulesFor(report, "evil.git"); !slices.Equal(r, []string{importpolicy.RuleBareRepo}) {
		t.Errorf("rules for the embedded bare repository = %v", r)
	}
	if report.Err() == nil || !strings.HasPrefix(report.Error(), "refused 10 paths: ") {
		t.Fatalf("report error = %q", report.Error())
	}

	// Refused: unstage. HEAD does not move, the index is back at HEAD, files stay.
	if err := g.Unstage(c, wt); err != nil {
		t.Fatal(err)
	}
	if now := rawGit(t, f.clone, "rev-parse", "refs/heads/trakkar/g4"); now != head {
		t.Fatalf("branch moved from %s to %s", head, now)
	}
	if out := rawGit(t, "/", "--git-dir="+wt.GitDir, "--work-tree="+wt.Path,
		"diff-index", "--cached", "--name-only", "HEAD", "--"); out != "" {
		t.Fatalf("index still differs from HEAD after Unstage:\n%s", out)
	}
	for _, p := range []string{"sub/x", "evil.git/HEAD", ".GIT/config", ".gitmodules", "passwd", "big.bin", odd, "src/new.go"} {
		if _, err := os.Lstat(filepath.Join(wt.Path, p)); err != nil {
			t.Fatalf("Unstage touched %q: %v", p, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(wt.Path, "README.md")); err != nil || string(b) != "hello agent\n" {
		t.Fatalf("Unstage changed README.md: %q, %v", b, err)
	}

	// Remove the hostile content; the clean change passes and commits.
	for _, p := range []string{"sub", "evil.git", ".GIT", "git~1", ".g\u200cit", ".gitmodules", "passwd", "main-checkout", "big.bin", ".github"} {
		if err := os.RemoveAll(filepath.Join(wt.Path, p)); err != nil {
			t.Fatal(err)
		}
	}
	changes, err = g.StageAll(c, wt)
	if err != nil {
		t.Fatal(err)
	}
	if err := importpolicy.Check(changes, importpolicy.Options{}).Err(); err != nil {
		t.Fatalf("clean change refused: %v", err)
	}
	if len(changes) != 6 {
		t.Fatalf("clean changes = %+v", changes)
	}
	sha, err := g.CommitStaged(c, wt, "agent work")
	if err != nil {
		t.Fatal(err)
	}
	if got := rawGit(t, f.clone, "log", "-1", "--format=%P", sha); got != head {
		t.Fatalf("parent = %s, want %s", got, head)
	}
	wantTree := []string{".gitattributes", "README.md", odd, "src/main.go", "src/new.go", "src/readme-link"}
	slices.Sort(wantTree)
	tree := strings.Split(rawGit(t, "/", "--git-dir="+filepath.Join(f.clone, ".git"),
		"ls-tree", "-r", "-z", "--name-only", "--full-tree", sha), "\x00")
	tree = slices.DeleteFunc(tree, func(s string) bool { return s == "" })
	if !slices.Equal(tree, wantTree) {
		t.Fatalf("tree = %q, want %q", tree, wantTree)
	}
	assertNoneFired(t, logs, "commit")
}

func TestCommitStagedCommitsOnlyTheIndex(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/cs", "")
	if changes, err := g.StageAll(c, wt); err != nil || len(changes) != 0 {
		t.Fatalf("StageAll(clean) = %v, %v", changes, err)
	}
	if _, err := g.CommitStaged(c, wt, "nothing"); !errors.Is(err, hostgit.ErrNothingStaged) {
		t.Fatalf("CommitStaged(nothing) err = %v, want ErrNothingStaged", err)
	}
	if _, err := g.CommitStaged(c, wt, "  \n"); err == nil {
		t.Fatal("empty message accepted")
	}
	writeFile(t, filepath.Join(wt.Path, "a.txt"), "a\n")
	// A file named HEAD must not make any HEAD argument ambiguous.
	writeFile(t, filepath.Join(wt.Path, "HEAD"), "not a ref\n")
	if _, err := g.StageAll(c, wt); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(wt.Path, "late.txt"), "written after staging\n")
	sha, err := g.CommitStaged(c, wt, "staged only")
	if err != nil {
		t.Fatal(err)
	}
	tree := lsTree(t, filepath.Join(f.clone, ".git"), sha)
	if !slices.Contains(tree, "a.txt") || !slices.Contains(tree, "HEAD") || slices.Contains(tree, "late.txt") {
		t.Fatalf("tree = %v; want a.txt and HEAD, not late.txt", tree)
	}
	if err := g.Unstage(c, wt); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(wt.Path, "late.txt")); err != nil {
		t.Fatal(err)
	}

	// A Worktree whose branch does not match the admin dir is refused.
	bad := wt
	bad.Branch = "other"
	if _, err := g.StageAll(c, bad); err == nil {
		t.Fatal("StageAll accepted a mismatched branch")
	}
	if _, err := g.CommitStaged(c, bad, "x"); err == nil {
		t.Fatal("CommitStaged accepted a mismatched branch")
	}
	if err := g.Unstage(c, bad); err == nil {
		t.Fatal("Unstage accepted a mismatched branch")
	}
}

// ChangesSince reports every commit's changes, so a .GIT tree added in one commit and
// removed in the next (invisible in the net diff, but published by a push) is caught.
func TestChangesSinceSeesIntermediateCommits(t *testing.T) {
	t.Parallel()
	f, g, c, wt := newWorktree(t, "trakkar/cs2", "")
	if ch, err := g.ChangesSince(c, wt, ""); err != nil || len(ch) != 0 {
		t.Fatalf("ChangesSince(no commits) = %v, %v", ch, err)
	}
	writeFile(t, filepath.Join(wt.Path, "a.txt"), "aaaa\n")
	if err := os.Symlink("/etc/shadow", filepath.Join(wt.Path, "shadow")); err != nil {
		t.Fatal(err)
	}
	if _, err := g.StageAll(c, wt); err != nil {
		t.Fatal(err)
	}
	first, err := g.CommitStaged(c, wt, "first")
	if err != nil {
		t.Fatal(err)
	}

	// Forge commits the way an imported bundle could carry them: git add refuses
	// .GIT, but mktree does not.
	gd := filepath.Join(f.clone, ".git")
	blob := strings.TrimSpace(rawGitStdin(t, gd, "[core]\n\tfsmonitor = /tmp/payload\n", "hash-object", "-w", "--stdin"))
	sub := rawGitStdin(t, gd, "100644 blob "+blob+"\tconfig\n", "mktree")
	baseTree := rawGit(t, "/", "--git-dir="+gd, "ls-tree", first)
	evilTree := rawGitStdin(t, gd, baseTree+"\n040000 tree "+sub+"\t.GIT\n", "mktree")
	cleanTree := rawGit(t, "/", "--git-dir="+gd, "rev-parse", first+"^{tree}")
	c1 := rawGit(t, "/", "--git-dir="+gd, "commit-tree", "-p", first, "-m", "add", evilTree)
	c2 := rawGit(t, "/", "--git-dir="+gd, "commit-tree", "-p", c1, "-m", "remove", cleanTree)
	rawGit(t, "/", "--git-dir="+gd, "update-ref", "refs/heads/trakkar/cs2", c2)
	if net := rawGit(t, "/", "--git-dir="+gd, "diff-tree", "-r", "--name-only", first, c2); net != "" {
		t.Fatalf("net diff should be empty, got %q", net)
	}

	changes, err := g.ChangesSince(c, wt, "")
	if err != nil {
		t.Fatal(err)
	}
	got := byPath(changes)
	if a := got["a.txt"]; a.Status != "A" || a.Mode != hostgit.ModeFile || a.Size != 5 {
		t.Fatalf("a.txt = %+v", a)
	}
	if s := got["shadow"]; s.Mode != hostgit.ModeSymlink || s.LinkTarget != "/etc/shadow" {
		t.Fatalf("shadow = %+v", s)
	}
	var statuses []string
	for _, ch := range changes {
		if ch.Path == ".GIT/config" {
			statuses = append(statuses, ch.Status)
		}
	}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []string{"A", "D"}) {
		t.Fatalf(".GIT/config statuses = %v, want [A D] (changes %+v)", statuses, changes)
	}
	r := importpolicy.Check(changes, importpolicy.Options{})
	if !slices.Contains(rulesFor(r, ".GIT/config"), importpolicy.RuleDotGit) ||
		!slices.Equal(rulesFor(r, "shadow"), []string{importpolicy.RuleSymlinkEscape}) {
		t.Fatalf("policy = %v", r.Violations)
	}

	// Since the first commit only the forged pair is reported.
	changes, err = g.ChangesSince(c, wt, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("ChangesSince(first) = %+v", changes)
	}
	if _, err := g.ChangesSince(c, wt, "--output=/tmp/x"); err == nil {
		t.Fatal("option-like base accepted")
	}
}

func rawGitStdin(t testing.TB, gitDir, stdin string, args ...string) string {
	t.Helper()
	cmd := rawCmd(t, "/", append([]string{"--git-dir=" + gitDir}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func rawCmd(t testing.TB, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = rawEnv(t)
	return cmd
}

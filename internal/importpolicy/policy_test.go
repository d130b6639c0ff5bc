package importpolicy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

func file(p string) hostgit.Change {
	return hostgit.Change{Path: p, Status: "A", Mode: hostgit.ModeFile, Size: 10}
}

func link(p, target string) hostgit.Change {
	return hostgit.Change{Path: p, Status: "A", Mode: hostgit.ModeSymlink, Size: int64(len(target)), LinkTarget: target}
}

// rules returns the rules reported for path, in order.
func rules(r Report, path string) []string {
	var out []string
	for _, v := range r.Violations {
		if v.Path == path {
			out = append(out, v.Rule)
		}
	}
	return out
}

func TestCheckRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change hostgit.Change
		want   []string // rules for change.Path; nil means accepted
	}{
		// dotgit and its aliases, at the top and deep down.
		{"dotgit", file(".git/config"), []string{RuleDotGit}},
		{"dotgit upper", file(".GIT/config"), []string{RuleDotGit}},
		{"dotgit mixed deep", file("a/b/c/.gIt/hooks/post-checkout"), []string{RuleDotGit}},
		{"dotgit as file", file("sub/.git"), []string{RuleDotGit}},
		{"dotgit trailing dot", file(".git./config"), []string{RuleDotGit}},
		{"dotgit trailing dots and spaces", file("x/.git . ./config"), []string{RuleDotGit}},
		{"dotgit trailing space", file(".git /config"), []string{RuleDotGit}},
		{"ntfs short name", file("git~1/config"), []string{RuleDotGit}},
		{"ntfs short name upper other digit", file("deep/GIT~7/hooks"), []string{RuleDotGit}},
		{"ntfs short name multi digit", file("git~12/x"), []string{RuleDotGit}},
		{"ntfs stream", file(".git::$INDEX_ALLOCATION/config"), []string{RuleDotGit}},
		{"ntfs stream other", file(".GIT:foo/config"), []string{RuleDotGit}},
		{"backslash separator", file(`a\.git\config`), []string{RuleDotGit}},
		{"hfs zwnj", file(".g\u200cit/config"), []string{RuleDotGit}},
		{"hfs zwj", file(".gi\u200dt/config"), []string{RuleDotGit}},
		{"hfs lrm", file("\u200e.git/config"), []string{RuleDotGit}},
		{"hfs rlm", file(".git\u200f/config"), []string{RuleDotGit}},
		{"hfs lre", file(".\u202agit/x"), []string{RuleDotGit}},
		{"hfs rlo", file(".\u202egit/x"), []string{RuleDotGit}},
		{"hfs 206a", file(".g\u206ait/x"), []string{RuleDotGit}},
		{"hfs 206f", file(".g\u206fit/x"), []string{RuleDotGit}},
		{"hfs bom", file("\ufeff.git/x"), []string{RuleDotGit}},
		{"hfs several", file("a/.\u200cG\u200di\ufeffT\u206e/x"), []string{RuleDotGit}},
		{"dotgit deletion", hostgit.Change{Path: "old/.git/config", Status: "D"}, []string{RuleDotGit}},
		{"dotgit not staged", hostgit.Change{Path: ".GIT/config", Status: hostgit.StatusNotStaged}, []string{RuleDotGit}},
		{"gitlink", hostgit.Change{Path: "sub", Status: "A", Mode: hostgit.ModeGitlink}, []string{RuleGitlink}},
		{"gitlink deep", hostgit.Change{Path: "vendor/x/sub", Status: "T", Mode: hostgit.ModeGitlink}, []string{RuleGitlink}},
		{"gitmodules", file(".gitmodules"), []string{RuleGitmodules}},
		{"gitmodules modified", hostgit.Change{Path: ".gitmodules", Status: "M", Mode: hostgit.ModeFile}, []string{RuleGitmodules}},
		{"gitmodules deleted", hostgit.Change{Path: ".gitmodules", Status: "D"}, []string{RuleGitmodules}},
		{"gitmodules deep", file("a/b/.gitmodules"), []string{RuleGitmodules}},
		{"gitmodules case", file(".GitModules"), []string{RuleGitmodules}},
		{"gitmodules alias", file(".gitmodules\u200c. "), []string{RuleGitmodules}},
		{"gitmodules short", file("GITMOD~1"), []string{RuleGitmodules}},
		{"gitmodules hashed short", file("gi7eba~4"), []string{RuleGitmodules}},
		{"gitmodules symlink", link(".gitmodules", "other"), []string{RuleGitmodules}},
		{"symlink absolute", link("passwd", "/etc/passwd"), []string{RuleSymlinkEscape}},
		{"symlink drive", link("a/x", `C:\Windows`), []string{RuleSymlinkEscape}},
		{"symlink backslash root", link("a/x", `\\server\share`), []string{RuleSymlinkEscape}},
		{"symlink up out", link("main", "../../main"), []string{RuleSymlinkEscape}},
		{"symlink up out deep", link("a/b/c", "../../../x"), []string{RuleSymlinkEscape}},
		{"symlink up out backslash", link("a/c", `..\..\x`), []string{RuleSymlinkEscape}},
		{"symlink dotdot after name", link("a/c", "b/../x"), []string{RuleSymlinkEscape}},
		{"symlink into dotgit", link("a/c", "../.git/config"), []string{RuleSymlinkEscape}},
		{"symlink into dotgit alias", link("c", "sub/.GIT."), []string{RuleSymlinkEscape}},
		{"symlink empty target", link("c", ""), []string{RuleSymlinkEscape}},
		{"symlink type change", hostgit.Change{Path: "x", Status: "T", Mode: hostgit.ModeSymlink, LinkTarget: "/"}, []string{RuleSymlinkEscape}},
		{"too large", hostgit.Change{Path: "big.bin", Status: "A", Mode: hostgit.ModeFile, Size: DefaultMaxFileBytes + 1}, []string{RuleTooLarge}},
		{"too large exec", hostgit.Change{Path: "big", Status: "M", Mode: hostgit.ModeExec, Size: 1 << 40}, []string{RuleTooLarge}},
		{"protected add", file(".github/workflows/ci.yml"), []string{RuleProtected}},
		{"protected delete", hostgit.Change{Path: ".github/workflows/ci.yml", Status: "D"}, []string{RuleProtected}},
		{"protected deep", file(".github/workflows/sub/x.yaml"), []string{RuleProtected}},
		{"protected case", file(".GitHub/Workflows/ci.yml"), []string{RuleProtected}},
		{"protected dir as symlink", link(".github/workflows", "../docs"), []string{RuleProtected}},
		// The widened defaults: what runs code on CI or on a reviewer's machine.
		{"protected dependabot", file(".github/dependabot.yml"), []string{RuleProtected}},
		{"protected codeowners", file(".github/CODEOWNERS"), []string{RuleProtected}},
		{"protected action", file(".github/actions/setup/action.yml"), []string{RuleProtected}},
		{"protected gitlab ci", file(".gitlab-ci.yml"), []string{RuleProtected}},
		{"protected gitlab ci case", file(".GitLab-CI.yml"), []string{RuleProtected}},
		{"protected devcontainer", file(".devcontainer/devcontainer.json"), []string{RuleProtected}},
		{"protected devcontainer deep", file(".devcontainer/x/Dockerfile"), []string{RuleProtected}},
		{"protected vscode tasks", file(".vscode/tasks.json"), []string{RuleProtected}},
		{"protected envrc", file(".envrc"), []string{RuleProtected}},
		{"protected husky", file(".husky/pre-commit"), []string{RuleProtected}},
		{"protected husky deep", file(".husky/_/husky.sh"), []string{RuleProtected}},
		// Names a Windows or macOS checkout opens as a protected path.
		{"protected ntfs trailing dot", file(".vscode./tasks.json"), []string{RuleProtected}},
		{"protected ntfs trailing space", file(".github /workflows/x.yml"), []string{RuleProtected}},
		{"protected ntfs stream", file(".envrc::$DATA"), []string{RuleProtected}},
		{"protected hfs ignorable", file(".hu\u200csky/pre-commit"), []string{RuleProtected}},
		{"symlinked parent alias", link(".vscode.", "editor"), []string{RuleProtected}},
		// A symlink at any ancestor of a protected path, or at the path itself.
		{"symlinked dotgithub", link(".github", "ci"), []string{RuleProtected}},
		{"symlinked vscode", link(".vscode", "editor"), []string{RuleProtected}},
		{"symlinked vscode case", link(".VSCode", "editor"), []string{RuleProtected}},
		{"symlinked envrc", link(".envrc", "scripts/env.sh"), []string{RuleProtected}},
		{"symlinked tasks", link(".vscode/tasks.json", "../tasks.json"), []string{RuleProtected}},
		{"not staged", hostgit.Change{Path: "unreadable.txt", Status: hostgit.StatusNotStaged}, []string{RuleNotStaged}},
		{"not staged dir", hostgit.Change{Path: "emptyrepo/", Status: hostgit.StatusNotStaged}, []string{RuleNotStaged}},
		{"invalid dotdot", file("a/../b"), []string{RuleInvalidPath}},
		{"invalid absolute", file("/etc/passwd"), []string{RuleInvalidPath}},
		{"invalid empty", file(""), []string{RuleInvalidPath}},
		{"invalid double slash", file("a//b"), []string{RuleInvalidPath}},
		{"invalid escape to dotgit", file("a/../.git/config"), []string{RuleInvalidPath, RuleDotGit}},
		{"unexpected status", hostgit.Change{Path: "x", Status: "U", Mode: hostgit.ModeFile}, []string{RuleUnexpected}},
		{"unexpected mode", hostgit.Change{Path: "x", Status: "A", Mode: "040000"}, []string{RuleUnexpected}},
		{"several rules", hostgit.Change{Path: ".github/workflows/.git", Status: "A", Mode: hostgit.ModeGitlink},
			[]string{RuleDotGit, RuleGitlink, RuleProtected}},

		// Accepted.
		{"plain file", file("src/main.go"), nil},
		{"deep file", file(strings.Repeat("d/", 300) + "f.txt"), nil},
		{"workflows elsewhere", file("docs/.github/workflows/ci.yml"), nil},
		{"vscode settings", file(".vscode/settings.json"), nil},
		{"envrc elsewhere", file("docs/.envrc"), nil},
		{"gitlab ci elsewhere", file("ci/.gitlab-ci.yml"), nil},
		{"symlink beside protected", link("githubx", ".github"), nil},
		{"symlink into protected", link("ci", ".github/workflows"), nil},
		{"gitignore", file(".gitignore"), nil},
		{"gitattributes", file("a/.gitattributes"), nil},
		{"git-prefixed names", file(".githubx/x"), nil},
		{"dotgitx", file(".gitx/config"), nil},
		{"gitdir word", file("git/config"), nil},
		{"bare repo shaped", file("evil.git/config"), nil},
		{"git tilde no digit", file("git~/x"), nil},
		{"git tilde letter", file("git~a/x"), nil},
		{"unicode name", file("docs/naïve – ünïcode ✓.md"), nil},
		{"newline name", file("a\nb"), nil},
		{"exactly max size", hostgit.Change{Path: "max", Status: "A", Mode: hostgit.ModeFile, Size: DefaultMaxFileBytes}, nil},
		{"deletion", hostgit.Change{Path: "old.txt", Status: "D"}, nil},
		{"symlink sibling", link("a/b", "c"), nil},
		{"symlink up inside", link("a/b/c", "../../x/y"), nil},
		{"symlink to root", link("a/b", ".."), nil},
		{"symlink dot", link("a", "./x/./y"), nil},
		{"symlink to gitignore", link("a", ".gitignore"), nil},
		{"gitlink deleted", hostgit.Change{Path: "sub", Status: "D"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := Check([]hostgit.Change{c.change}, Options{})
			if got := rules(r, c.change.Path); !slices.Equal(got, c.want) {
				t.Fatalf("Check(%+v) rules = %v, want %v (report: %v)", c.change, got, c.want, r.Violations)
			}
			if len(r.Violations) != len(c.want) {
				t.Fatalf("unexpected extra violations: %v", r.Violations)
			}
			if (r.Err() == nil) != (c.want == nil) {
				t.Fatalf("Err() = %v with %d violations", r.Err(), len(r.Violations))
			}
		})
	}
}

func TestCheckOptions(t *testing.T) {
	t.Parallel()
	big := hostgit.Change{Path: "big", Status: "A", Mode: hostgit.ModeFile, Size: 2000}
	wf := file(".github/workflows/ci.yml")
	cases := []struct {
		name    string
		changes []hostgit.Change
		opts    Options
		want    []Violation
	}{
		{"custom size limit", []hostgit.Change{big}, Options{MaxFileBytes: 1999},
			[]Violation{{"big", RuleTooLarge, "2000 bytes, limit 1999"}}},
		{"size at limit", []hostgit.Change{big}, Options{MaxFileBytes: 2000}, nil},
		{"allow protected", []hostgit.Change{wf}, Options{AllowProtected: true}, nil},
		{"empty protected list", []hostgit.Change{wf}, Options{Protected: []string{}}, nil},
		{"custom protected replaces default", []hostgit.Change{wf, file("CODEOWNERS"), file("a/CODEOWNERS")},
			Options{Protected: []string{"**/CODEOWNERS"}},
			[]Violation{{"CODEOWNERS", RuleProtected, "protected by **/CODEOWNERS"}, {"a/CODEOWNERS", RuleProtected, "protected by **/CODEOWNERS"}}},
		{"star stays in component", []hostgit.Change{file(".husky/pre-commit"), file(".husky/_/h")},
			Options{Protected: []string{".husky/*"}},
			[]Violation{{".husky/pre-commit", RuleProtected, "protected by .husky/*"}}},
		{"middle doublestar", []hostgit.Change{file("a/x/y/z.yml"), file("a/z.yml"), file("a/z.txt")},
			Options{Protected: []string{"a/**/*.yml"}},
			[]Violation{{"a/x/y/z.yml", RuleProtected, "protected by a/**/*.yml"}, {"a/z.yml", RuleProtected, "protected by a/**/*.yml"}}},
		{"symlinked parent of a custom pattern", []hostgit.Change{link(".github", "ci"), file("ci/workflows/evil.yml")},
			Options{Protected: []string{".github/workflows/**"}},
			[]Violation{{".github", RuleProtected, "symlink at a parent of paths protected by .github/workflows/**"}}},
		{"symlinked grandparent", []hostgit.Change{link("a", "x"), link("a/b", "y"), link("a/c", "z"), link("b", "a"), link("a/b/c/d", "e")},
			Options{Protected: []string{"a/b/c/**"}},
			[]Violation{
				{"a", RuleProtected, "symlink at a parent of paths protected by a/b/c/**"},
				{"a/b", RuleProtected, "symlink at a parent of paths protected by a/b/c/**"},
				{"a/b/c/d", RuleProtected, "protected by a/b/c/**"},
			}},
		{"symlinked parent through doublestar", []hostgit.Change{link("x/y", "z"), file("x/y/z")},
			Options{Protected: []string{"x/**/*.yml"}},
			[]Violation{{"x/y", RuleProtected, "symlink at a parent of paths protected by x/**/*.yml"}}},
		{"own match beats parent", []hostgit.Change{link(".github", "ci")},
			Options{Protected: []string{".github/workflows/**", ".github/**"}},
			[]Violation{{".github", RuleProtected, "protected by .github/**"}}},
		{"allow protected allows symlinked parent", []hostgit.Change{link(".github", "ci")}, Options{AllowProtected: true}, nil},
		{"malformed pattern fails closed", []hostgit.Change{file("src/x.go")}, Options{Protected: []string{"[oops"}},
			[]Violation{{"src/x.go", RuleProtected, `malformed protected pattern "[oops"`}}},
		{"too many distinct paths", []hostgit.Change{file("a"), file("b"), file("c")}, Options{MaxFiles: 2},
			[]Violation{{"", RuleTooMany, "3 changed paths, limit 2"}}},
		{"duplicates count once", []hostgit.Change{file("a"), file("a"), file("b")}, Options{MaxFiles: 2}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := Check(c.changes, c.opts).Violations
			if !slices.Equal(got, c.want) {
				t.Fatalf("violations = %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestCheckDefaultMaxFiles(t *testing.T) {
	t.Parallel()
	var changes []hostgit.Change
	for i := range DefaultMaxFiles {
		changes = append(changes, file(fmt.Sprintf("f/%d", i)))
	}
	if r := Check(changes, Options{}); r.Err() != nil {
		t.Fatalf("%d files refused: %v", len(changes), r)
	}
	changes = append(changes, file("one-more"))
	r := Check(changes, Options{})
	if len(r.Violations) != 1 || r.Violations[0].Rule != RuleTooMany {
		t.Fatalf("violations = %v, want one too-many", r.Violations)
	}
}

// A deep path with several "**" patterns is matched in linear time.
func TestGlobDeepPathIsFast(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("a/", 5000) + "b"
	r := Check([]hostgit.Change{file(deep)}, Options{Protected: []string{"**/a/**/a/**/a/**/c", "**/a/**/b"}})
	if got := rules(r, deep); !slices.Equal(got, []string{RuleProtected}) {
		t.Fatalf("rules = %v", got)
	}
}

func TestReportError(t *testing.T) {
	t.Parallel()
	r := Check([]hostgit.Change{
		file(".GIT/config"),
		{Path: "sub", Status: "A", Mode: hostgit.ModeGitlink},
		link("evil\nname", "/etc/passwd"),
		file("ok.txt"),
	}, Options{MaxFiles: 3})
	var err error = r
	var rep Report
	if !errors.As(r.Err(), &rep) || len(rep.Violations) != 4 {
		t.Fatalf("Err() = %v", r.Err())
	}
	want := `refused 3 paths: .GIT/config (git metadata), sub (nested repository (gitlink)), "evil\nname" (symlink to absolute path /etc/passwd); refused the import: 4 changed paths, limit 3`
	if err.Error() != want {
		t.Fatalf("Error() =\n%s\nwant\n%s", err.Error(), want)
	}

	var many []hostgit.Change
	for i := range 25 {
		many = append(many, file(fmt.Sprintf("x%d/.git", i)))
	}
	msg := Check(many, Options{}).Error()
	if !strings.HasPrefix(msg, "refused 25 paths: x0/.git (git metadata)") || !strings.HasSuffix(msg, ", and 15 more") {
		t.Fatalf("long report = %q", msg)
	}
	if strings.Contains(msg, "x10/") {
		t.Fatalf("report lists more than 10 paths: %q", msg)
	}

	long := Check([]hostgit.Change{file(strings.Repeat("z", 5000) + "/.git")}, Options{}).Error()
	if len(long) > 400 || strings.ContainsAny(long, "\n\r") {
		t.Fatalf("long path not shortened: %d bytes", len(long))
	}
	if got := Check([]hostgit.Change{file(".git \u200c/x")}, Options{}).Error(); !strings.Contains(got, `".git \u200c/x"`) {
		t.Fatalf("invisible characters not quoted: %q", got)
	}
	if (Report{}).Err() != nil {
		t.Fatal("empty report must have nil Err")
	}
}

func TestBareRepositoryRefused(t *testing.T) {
	file := func(p string) hostgit.Change { return hostgit.Change{Path: p, Status: "A", Mode: "100644", Size: 10} }
	cases := []struct {
		name    string
		changes []hostgit.Change
		want    string // refused folder, "" for none
	}{
		{"embedded bare repo", []hostgit.Change{file("evil.git/HEAD"), file("evil.git/config"), file("evil.git/objects/ab/cdef")}, "evil.git"},
		{"refs only", []hostgit.Change{file("x/HEAD"), file("x/refs/heads/main")}, "x"},
		{"at the top", []hostgit.Change{file("HEAD"), file("objects/info/packs")}, "."},
		{"deep and lower case", []hostgit.Change{file("a/b/c/head"), file("a/b/c/Objects/pack/p")}, "a/b/c"},
		{"a HEAD file alone", []hostgit.Change{file("docs/HEAD")}, ""},
		{"objects folder alone", []hostgit.Change{file("src/objects/model.go")}, ""},
		{"HEAD and objects in different folders", []hostgit.Change{file("a/HEAD"), file("b/objects/x")}, ""},
		{"deleted", []hostgit.Change{{Path: "old.git/HEAD", Status: "D"}, {Path: "old.git/objects/x", Status: "D"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := Check(c.changes, Options{})
			var got []string
			for _, v := range rep.Violations {
				if v.Rule == RuleBareRepo {
					got = append(got, v.Path)
				}
			}
			if c.want == "" && len(got) != 0 || c.want != "" && (len(got) != 1 || got[0] != c.want) {
				t.Fatalf("bare-repo violations %v, want %q", got, c.want)
			}
		})
	}
}

package hostgit_test

import (
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

func TestValidateBranch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ok   bool
	}{
		{"trakkar/eng-1-fix-login", true},
		{"feature/a.b_c-d", true},
		{"ünïcödé/branch", true},
		{strings.Repeat("a", 200), true},
		{"", false},
		{"-b", false},
		{"--upload-pack=touch /tmp/x", false},
		{"a..b", false},
		{"a@{1}", false},
		{"@", false},
		{"HEAD", false},
		{"a.lock", false},
		{"a/b.lock/c", false},
		{".hidden", false},
		{"a/.hidden", false},
		{"a/", false},
		{"/a", false},
		{"a//b", false},
		{"a.", false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\x7fb", false},
		{"a\u00a0b", false}, // no-break space
		{"a\u202eb", false}, // right-to-left override
		{"a\u200bb", false}, // zero-width space
		{"a~1", false},
		{"a^", false},
		{"a:b", false},
		{"a?", false},
		{"a*", false},
		{"a[b", false},
		{"a\\b", false},
		{"$(touch x)", false},
		{"a;rm", true}, // shell metacharacters are harmless without a shell, and git accepts them
		{"a|b&c", true},
		{"a`b`", true},
		{strings.Repeat("a", 201), false},
		{"\xff\xfe", false},
	}
	for _, tc := range cases {
		err := hostgit.ValidateBranch(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateBranch(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err == nil && !gitAcceptsBranch(t, tc.name) {
			t.Errorf("ValidateBranch(%q) accepted a name git rejects", tc.name)
		}
	}
}

func TestSlug(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"Fix the Login Bug!", 0, "fix-the-login-bug"},
		{"  --Hello__World--  ", 0, "hello-world"},
		{"ENG-123", 0, "eng-123"},
		{"", 10, "task"},
		{"!!!", 10, "task"},
		{"Café déjà vu", 0, "caf-d-j-vu"},
		{"日本語", 0, "task"},
		{"$(rm -rf /); `x`", 0, "rm-rf-x"},
		{"a\nb\tc", 0, "a-b-c"},
		{"one-two-three-four", 9, "one-two"},     // cut on a '-' boundary
		{"one-two-three-four", 7, "one-two"},     // boundary exactly at max
		{"abcdefghijklmnop-q", 10, "abcdefghij"}, // no boundary in reach: hard cut
		{"a-bcdefghijklmnop", 10, "a-bcdefghi"},  // boundary too early: hard cut
		{strings.Repeat("word-", 20), 40, "word-word-word-word-word-word-word-word"},
	}
	for _, tc := range cases {
		if got := hostgit.Slug(tc.in, tc.max); got != tc.want {
			t.Errorf("Slug(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestBranchName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prefix, key, title string
		want               string
		ok                 bool
	}{
		{"", "ENG-42", "Fix login redirect loop", "trakkar/eng-42-fix-login-redirect-loop", true},
		{"bot/", "k", "", "bot/k-task", true},
		{"", "", "", "trakkar/task-task", true},
		{"", "ENG-1", strings.Repeat("very long title ", 10), "trakkar/eng-1-very-long-title-very-long-title-very", true},
		{"", "--upload-pack", "-x", "trakkar/upload-pack-x", true},
		{"-evil/", "k", "t", "", false},
		{"a..b/", "k", "t", "", false},
		{"x.lock/", "k", "t", "", false},
		{strings.Repeat("p", 195) + "/", "key", "title", "", false},
	}
	for _, tc := range cases {
		got, err := hostgit.BranchName(tc.prefix, tc.key, tc.title)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("BranchName(%q, %q, %q) = %q, %v; want %q ok=%v", tc.prefix, tc.key, tc.title, got, err, tc.want, tc.ok)
		}
		if err == nil && !gitAcceptsBranch(t, got) {
			t.Errorf("git rejects %q", got)
		}
	}
}

func FuzzBranchName(f *testing.F) {
	for _, s := range [][2]string{
		{"ENG-1", "Fix the bug"}, {"", ""}, {"--x", "-y"}, {"a..b", "c@{d"}, {"x.lock", "y.lock"},
		{"ü", "日本"}, {"a\nb", "c\x00d"}, {strings.Repeat("k", 300), strings.Repeat("t ", 300)},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, title string) {
		name, err := hostgit.BranchName("", key, title)
		if err != nil {
			t.Fatalf("BranchName(%q, %q) failed with the default prefix: %v", key, title, err)
		}
		if err := hostgit.ValidateBranch(name); err != nil {
			t.Fatalf("BranchName produced %q that ValidateBranch rejects: %v", name, err)
		}
		if !gitAcceptsBranch(t, name) {
			t.Fatalf("git check-ref-format --branch rejects %q", name)
		}
	})
}

func FuzzValidateBranch(f *testing.F) {
	for _, s := range []string{"main", "trakkar/x-y", "-x", "a..b", "a@{1}", "@", "a.lock", ".a", "a/", "a//b",
		"a b", "a\x00", "a~", "ü/ß", "HEAD", "refs/heads/x", "a/b/c.d", "x\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if hostgit.ValidateBranch(name) != nil {
			return
		}
		if !utf8.ValidString(name) || strings.HasPrefix(name, "-") || len(name) > hostgit.MaxBranchLen {
			t.Fatalf("ValidateBranch accepted %q", name)
		}
		if !gitAcceptsBranch(t, name) {
			t.Fatalf("ValidateBranch accepted %q, git rejects it", name)
		}
	})
}

// gitAcceptsBranch asks git itself; the name is passed as its own argv element.
func gitAcceptsBranch(t testing.TB, name string) bool {
	t.Helper()
	if strings.ContainsRune(name, 0) {
		return false // cannot be passed through argv at all
	}
	cmd := exec.Command("git", "check-ref-format", "--branch", name)
	cmd.Dir = t.TempDir()
	cmd.Env = rawEnv(t)
	out, err := cmd.Output()
	return err == nil && strings.TrimSpace(string(out)) == name
}

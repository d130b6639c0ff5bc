package importpolicy

import (
	"path"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// FuzzCheck: Check never panics, and never accepts a path whose cleaned components
// include .git (in any case), whatever the status, mode or link target.
func FuzzCheck(f *testing.F) {
	seeds := []struct {
		path, status, mode, target string
		size                       int64
	}{
		{".git/config", "A", hostgit.ModeFile, "", 1},
		{"a/../.GIT/x", "M", hostgit.ModeExec, "", 1},
		{"x/./.Git/../.git", "D", "", "", 0},
		{"git~1/config", "A", hostgit.ModeFile, "", 1},
		{".g\u200cit/config", "A", hostgit.ModeFile, "", 1},
		{".git::$INDEX_ALLOCATION", "A", hostgit.ModeFile, "", 1},
		{"l", "A", hostgit.ModeSymlink, "../../../etc/passwd", 20},
		{"a/b/l", "T", hostgit.ModeSymlink, "b/../../..", 10},
		{"sub", "A", hostgit.ModeGitlink, "", 0},
		{"ok/file.txt", "A", hostgit.ModeFile, "", 5},
		{"\xff\xfe/.git", "A", hostgit.ModeFile, "", 5},
		{"", "", "", "", -1},
		{"/", "!", "weird", "\x00", 1 << 62},
		{`a\..\.git`, "A", hostgit.ModeFile, "", 1},
	}
	for _, s := range seeds {
		f.Add(s.path, s.status, s.mode, s.target, s.size)
	}
	f.Fuzz(func(t *testing.T, p, status, mode, target string, size int64) {
		c := hostgit.Change{Path: p, Status: status, Mode: mode, Size: size, LinkTarget: target}
		r := Check([]hostgit.Change{c}, Options{})
		_ = r.Error() // must not panic either
		for _, sep := range []string{"/", `\`} {
			cleaned := path.Clean(strings.ReplaceAll(p, sep, "/"))
			for _, comp := range strings.Split(cleaned, "/") {
				if strings.EqualFold(comp, ".git") && r.Err() == nil {
					t.Fatalf("accepted %q (cleaned %q)", p, cleaned)
				}
			}
		}
		if mode == hostgit.ModeSymlink && strings.HasPrefix(target, "/") && len(rules(r, p)) == 0 {
			t.Fatalf("accepted symlink %q -> %q", p, target)
		}
	})
}

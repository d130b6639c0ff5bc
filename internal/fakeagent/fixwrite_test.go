package fakeagent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A fix write is ignored by a new session and carried out when the session is
// resumed with a prompt that does not repeat it, for both CLIs.
func TestFixWriteOnlyOnResume(t *testing.T) {
	const task = "Make the app work\nfake:write=app.txt=broken\nfake:fix-write=app.txt=fixed\\n"
	const fix = "The verify command failed.\nFix it."
	tests := []struct {
		name   string
		first  func(t *testing.T) *fake
		resume func(f *fake, id string) []string
	}{
		{
			name:   "claude",
			first:  func(t *testing.T) *fake { return newFake(t, args("--session-id", testSID, task)...) },
			resume: func(_ *fake, _ string) []string { return args("--resume", testSID, fix) },
		},
		{
			name:   "cursor",
			first:  func(t *testing.T) *fake { return newCursor(t, cursorArgs("--", task)...) },
			resume: func(_ *fake, id string) []string { return cursorArgs("--resume", id, "--", fix) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.first(t)
			if code := f.run(); code != 0 {
				t.Fatalf("first run exit %d: %s", code, f.stderr.String())
			}
			app := filepath.Join(f.env.Dir, "app.txt")
			if got, _ := os.ReadFile(app); string(got) != "broken" {
				t.Fatalf("new session wrote app.txt = %q, want the plain write only", got)
			}
			id, _ := f.lines(t)[0]["session_id"].(string)

			again := *f
			again.stdout, again.stderr = bytes.Buffer{}, bytes.Buffer{}
			again.env.Stdout, again.env.Stderr = &again.stdout, &again.stderr
			again.env.Args = tc.resume(f, id)
			if code := again.run(); code != 0 {
				t.Fatalf("resume exit %d: %s", code, again.stderr.String())
			}
			if got, _ := os.ReadFile(app); string(got) != "fixed\n" {
				t.Errorf("resumed session wrote app.txt = %q, want the fix", got)
			}
			if _, err := os.Stat(filepath.Join(f.env.Dir, "TRAKKAR_FAKE.md")); err == nil {
				t.Errorf("a fix round also wrote the default file")
			}
			if !strings.Contains(again.stdout.String(), "app.txt") {
				t.Errorf("resume output does not mention the fixed file: %s", again.stdout.String())
			}
		})
	}
}

func TestFixWriteDirectiveErrors(t *testing.T) {
	for _, line := range []string{"fake:fix-write=", "fake:fix-write=../x=y", "fake:fix-write=nocontent"} {
		if _, err := parseDirectives(line); err == nil || !strings.Contains(err.Error(), "fix-write") {
			t.Errorf("%q: err %v, want a fix-write error", line, err)
		}
	}
	d, err := parseDirectives("fake:fix-write=a/b.txt=x\\ny")
	if err != nil || len(d.fixWrites) != 1 || d.fixWrites[0] != (fileWrite{Path: "a/b.txt", Content: "x\ny"}) || !d.defaultWrite {
		t.Fatalf("parse: %+v %v", d, err)
	}
}

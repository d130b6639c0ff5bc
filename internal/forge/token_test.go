package forge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveToken(t *testing.T) {
	t.Parallel()
	// A fake gh that records its cwd and prints a token.
	ghDir := t.TempDir()
	cwdLog := filepath.Join(t.TempDir(), "cwd")
	writeScript(t, filepath.Join(ghDir, "gh"), "#!/bin/sh\npwd > '"+cwdLog+"'\n[ \"$1 $2\" = 'auth token' ] || exit 3\necho '  gho_fromGh  '\n")
	failDir := t.TempDir()
	writeScript(t, filepath.Join(failDir, "gh"), "#!/bin/sh\necho 'You are not logged into any GitHub hosts.' >&2\nexit 1\n")
	emptyDir := t.TempDir()
	nonExec := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonExec, "gh"), []byte("#!/bin/sh\necho x\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		env  map[string]string
		want string
		err  bool
	}{
		{"GH_TOKEN wins", map[string]string{"GH_TOKEN": "a", "GITHUB_TOKEN": "b", "PATH": ghDir}, "a", false},
		{"GITHUB_TOKEN next", map[string]string{"GITHUB_TOKEN": " b\n", "PATH": ghDir}, "b", false},
		{"blank GH_TOKEN skipped", map[string]string{"GH_TOKEN": "  ", "GITHUB_TOKEN": "b"}, "b", false},
		{"gh auth token", map[string]string{"PATH": emptyDir + string(os.PathListSeparator) + ghDir}, "gho_fromGh", false},
		{"gh missing", map[string]string{"PATH": emptyDir}, "", true},
		{"no PATH", map[string]string{}, "", true},
		{"relative PATH entry ignored", map[string]string{"PATH": "."}, "", true},
		{"gh not executable", map[string]string{"PATH": nonExec}, "", true},
		{"gh not logged in", map[string]string{"PATH": failDir}, "", true},
	}
	for _, tc := range cases {
		got, err := ResolveToken(context.Background(), func(k string) string { return tc.env[k] })
		if tc.err {
			if !errors.Is(err, ErrNoToken) || got != "" {
				t.Errorf("%s: = %q, %v; want ErrNoToken", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	b, err := os.ReadFile(cwdLog)
	if err != nil {
		t.Fatalf("fake gh never ran: %v", err)
	}
	wantDir, _ := filepath.EvalSymlinks(os.TempDir())
	if got := strings.TrimSpace(string(b)); got != wantDir && got != os.TempDir() {
		t.Fatalf("gh ran in %q, want %q", got, os.TempDir())
	}
}

func writeScript(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

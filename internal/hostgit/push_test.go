package hostgit_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// TestPushThatFailedButLanded: a push that fails while the remote's branch
// already is the local commit (a killed supervisor's push, still running,
// landed it first) is published; any other failure stays a failure.
func TestPushThatFailedButLanded(t *testing.T) {
	tests := []struct {
		name string
		// remoteRef is what the origin's pre-receive hook sets the branch to
		// before it refuses the push: "" leaves it alone.
		remoteRef string
		// fetchURL, when set, gives the remote a fetch URL of its own (the
		// push URL stays the origin): "lacks" is a repository without the
		// branch, "holds" one whose branch is the local commit. Only the
		// push URL says whether the push landed.
		fetchURL string
		wantErr  bool
	}{
		{name: "the remote already holds the commit", remoteRef: "local", wantErr: false},
		{name: "refused and not there", remoteRef: "", wantErr: true},
		{name: "the remote holds another commit", remoteRef: "base", wantErr: true},
		{name: "the push URL holds it, the fetch URL does not", remoteRef: "local", fetchURL: "lacks", wantErr: false},
		{name: "the fetch URL holds it, the push URL does not", remoteRef: "", fetchURL: "holds", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, g, c, wt := newWorktree(t, "trakkar/eng-9-push", "")
			writeFile(t, filepath.Join(wt.Path, "note.txt"), "hello\n")
			committed, sha, err := g.CommitAll(c, wt, "add a note")
			if err != nil || !committed {
				t.Fatalf("CommitAll = %v, %v", committed, err)
			}
			ref := "refs/heads/" + wt.Branch
			target := map[string]string{"local": sha, "base": f.base}[tc.remoteRef]
			if target != "" {
				// The commit's objects reach the origin first, under another
				// name, so the hook can point the branch at them from outside
				// the push's quarantine.
				rawGit(t, f.clone, "push", "--quiet", "origin", sha+":refs/heads/elsewhere")
			}
			if tc.fetchURL != "" {
				other := filepath.Join(t.TempDir(), "fetch.git")
				rawGit(t, f.clone, "init", "--quiet", "--bare", other)
				if tc.fetchURL == "holds" {
					rawGit(t, f.clone, "push", "--quiet", other, sha+":"+ref)
				}
				rawGit(t, f.clone, "remote", "set-url", "--push", "origin", f.origin)
				rawGit(t, f.clone, "remote", "set-url", "origin", other)
			}
			hook := "#!/bin/sh\n"
			if target != "" {
				hook += "env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES git update-ref " + ref + " " + target + " || exit 2\n"
			}
			hook += "echo refused by the test >&2\nexit 1\n"
			writeExec(t, filepath.Join(f.origin, "hooks", "pre-receive"), hook)

			err = g.Push(c, f.clone, "origin", wt.Branch, hostgit.Auth{})
			if tc.wantErr != (err != nil) {
				t.Fatalf("Push error = %v, want an error: %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "push") {
				t.Errorf("error %q does not say it was the push", err)
			}
			got, _ := rawGitErr(t, f.origin, "rev-parse", "--verify", "--quiet", ref)
			if want := target; strings.TrimSpace(got) != want {
				t.Errorf("origin's %s = %q, want %q", ref, got, want)
			}
		})
	}
}

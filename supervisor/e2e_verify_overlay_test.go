package supervisor_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// What the verify command writes is not the agent's work: build outputs,
// reports, and edits to tracked files made while verifying never reach the
// PR, and the worktree is left as the agent left it.
func TestVerifyAddsNothingToTheChange(t *testing.T) {
	parallel(t)
	const cmd = `mkdir -p build && echo bin > build/out.bin && echo report > report.xml && echo tampered >> README.md && echo extra > app.txt.orig && test "$(cat app.txt)" = ok`
	e := newVerifyEnv(t, cmd)
	createTask(t, e, "VER-9", "Make it ok\nfake:write=app.txt=ok\n")
	e.start(e.verifyConfig(nil))

	rv := e.waitCompleted("VER-9", 120*time.Second)
	c := rv.Completion
	if c.Outcome != trakkar.OutcomeSucceeded || c.PullRequest == nil || c.PullRequest.Draft {
		t.Fatalf("outcome %q pr %+v error %q\n%s", c.Outcome, c.PullRequest, deref(c.Error), eventTexts(rv.Events))
	}
	_, files := e.gh.Branch(t, "acme", "web", c.PullRequest.Branch)
	if strings.TrimSpace(files["app.txt"]) != "ok" {
		t.Errorf("the agent's file is missing from the PR: %v", keysOf(files))
	}
	for _, f := range []string{"build/out.bin", "report.xml", "app.txt.orig"} {
		if _, ok := files[f]; ok {
			t.Errorf("the verify command's output %s was published", f)
		}
	}
	if strings.Contains(files["README.md"], "tampered") {
		t.Errorf("the verify command's edit of README.md was published:\n%s", files["README.md"])
	}
	// Nothing of the verify round is left in the task's state folder either.
	if _, err := os.Stat(filepath.Join(e.repo, ".trakkar-worktrees", ".state", "ver-9", "verify")); err == nil {
		t.Errorf("the verify overlay's layers were left behind")
	}
}

package supervisor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// Inside the container the agent can use git against a disposable repository
// made for the task: status and diff show its own change, the history is one
// commit, and the user's repository stays out of reach. The host ignores that
// repository and publishes from the files.
func TestAgentGitInContainer(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	image := testimage.EnsureGit(t)
	desc := strings.Join([]string{
		"fake:scenario=netprobe",
		"fake:probe=exec:echo hello > greeting.txt && git status --porcelain",
		"fake:probe=exec:git log --oneline | wc -l",
		"fake:probe=exec:git rev-parse --git-dir",
		"fake:probe=exec:git config --get remote.origin.url || echo no-remote",
		"fake:probe=exec:git add -A && git commit -qm agent-commit && git log --oneline | wc -l",
	}, "\n")
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "GIT-1", Title: "Use git inside", Description: desc}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(func(c *supervisor.Config) { c.Image = image }))
	rv := e.waitCompleted("GIT-1", 120*time.Second)
	texts := eventTexts(rv.Events)
	for _, want := range []string{
		`git status --porcelain exit 0 output "?? greeting.txt"`,
		`git log --oneline | wc -l exit 0 output "1"`,
		`git rev-parse --git-dir exit 0 output "/trakkar/git"`,
		`output "no-remote"`,
		`git log --oneline | wc -l exit 0 output "2"`,
	} {
		if !strings.Contains(texts, want) {
			t.Errorf("missing %q in:\n%s", want, texts)
		}
	}
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
		t.Fatalf("%+v", rv.Completion)
	}
	sha, files := e.gh.Branch(t, "acme", "web", rv.Completion.PullRequest.Branch)
	if strings.TrimSpace(files["greeting.txt"]) != "hello" {
		t.Fatalf("published files %v", keysOf(files))
	}
	// The agent's own commit stays in its disposable repository: the host
	// commits from the files with its own message.
	if msg := gitCmd(t, e.gh.BareDir("acme", "web"), "log", "-1", "--format=%s", sha); !strings.HasPrefix(msg, "GIT-1:") {
		t.Fatalf("published commit %q is not the runner's", msg)
	}
}

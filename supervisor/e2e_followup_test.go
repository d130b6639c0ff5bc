package supervisor_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// followUp runs a task, posts a chat reply, and returns the two completed runs.
func followUp(t *testing.T, e *env, key string, between func()) (first, second standin.RunView) {
	t.Helper()
	task, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: "Add greeting files",
		Description: "Add a first file.\nfake:write=first.txt=one\n"})
	if err != nil {
		t.Fatal(err)
	}
	first = e.waitCompleted(key, 90*time.Second)
	if first.Completion.Outcome != trakkar.OutcomeSucceeded || first.Completion.PullRequest == nil {
		t.Fatalf("first run: %+v\n%s", first.Completion, eventTexts(first.Events))
	}
	if between != nil {
		between()
	}
	if _, err := e.stand.PostMessage(task.ID, "Please add a second file too.\nfake:write=second.txt=two"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "follow-up run to complete", func() bool {
		tv, _ := e.stand.TaskByKey(key)
		return len(tv.Runs) == 2 && tv.Runs[1].Completion != nil
	})
	tv, _ := e.stand.TaskByKey(key)
	second = tv.Runs[1]
	if second.Run.Kind != trakkar.KindFollowUp {
		t.Fatalf("second run kind %q", second.Run.Kind)
	}
	if second.Completion.Outcome != trakkar.OutcomeSucceeded || second.Completion.PullRequest == nil {
		t.Fatalf("follow-up: %+v\n%s", second.Completion, eventTexts(second.Events))
	}
	// The same PR is updated: one PR, and its branch carries both changes.
	if prs := e.gh.PRs("acme", "web"); len(prs) != 1 {
		t.Fatalf("want exactly one PR after the follow-up, got %d", len(prs))
	}
	if second.Completion.PullRequest.URL != first.Completion.PullRequest.URL {
		t.Fatalf("follow-up reported another PR: %s vs %s", second.Completion.PullRequest.URL, first.Completion.PullRequest.URL)
	}
	_, files := e.gh.Branch(t, "acme", "web", first.Completion.PullRequest.Branch)
	if !strings.Contains(files["first.txt"], "one") || !strings.Contains(files["second.txt"], "two") {
		t.Fatalf("PR branch files after follow-up: %v", keysOf(files))
	}
	return first, second
}

func TestFollowUpResumesTheSameSession(t *testing.T) {
	t.Parallel()
	for _, provider := range []string{supervisor.ProviderClaude, supervisor.ProviderCursor} {
		t.Run(provider, func(t *testing.T) {
			parallel(t)
			e := newEnv(t, envOpts{})
			e.start(e.config(func(c *supervisor.Config) { c.Provider = provider; c.ModelEnv = modelEnvFor(provider) }))
			first, second := followUp(t, e, "WEB-40", nil)
			id := deref(first.Completion.AgentSessionID)
			if id == "" || deref(second.Completion.AgentSessionID) != id {
				t.Fatalf("session ids: first %q, follow-up %q", id, deref(second.Completion.AgentSessionID))
			}
			texts := eventTexts(second.Events)
			if !strings.Contains(texts, "resuming the agent's session "+id) {
				t.Errorf("follow-up did not resume:\n%s", texts)
			}
			if !strings.Contains(texts, "Resumed") || !strings.Contains(texts, id) {
				t.Errorf("the agent did not continue its own session:\n%s", texts)
			}
		})
	}
}

// With the workspace and its state gone (another host, a deleted folder), the
// follow-up rebuilds from the PR branch and starts a fresh session that gets
// the chat history.
func TestFollowUpAfterWorkspaceDeleted(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	e.start(e.config(nil))
	first, second := followUp(t, e, "WEB-41", func() {
		// The runner may still be removing the first run's worktree (it
		// completes first); a person deleting the folder then tries again.
		waitFor(t, fakeWait, "the workspace folder deleted", func() bool {
			return os.RemoveAll(filepath.Join(e.repo, ".trakkar-worktrees")) == nil
		})
	})
	if a, b := deref(first.Completion.AgentSessionID), deref(second.Completion.AgentSessionID); a == b || b == "" {
		t.Fatalf("want a fresh session, got %q then %q", a, b)
	}
	if strings.Contains(eventTexts(second.Events), "resuming") {
		t.Fatalf("resumed a session that was deleted:\n%s", eventTexts(second.Events))
	}
}

// Each failure class ends the run failed with a message a person can act on,
// visible in the task's events.
func TestFailureClassesAreReported(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	cases := map[string]string{
		"usage-limit": "usage limit",
		"credit":      "credit balance is too low",
		"max-turns":   "maximum number of turns",
		"auth":        "not logged in or the credential is invalid",
		"crash":       "exited with status",
	}
	i := 0
	keys := map[string]string{}
	for scenario := range cases {
		i++
		key := "FAIL-" + string(rune('A'+i))
		keys[scenario] = key
		if _, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: scenario, Description: "fake:scenario=" + scenario + "\n"}); err != nil {
			t.Fatal(err)
		}
	}
	e.start(e.config(nil))
	for scenario, want := range cases {
		rv := e.waitCompleted(keys[scenario], 90*time.Second)
		c := rv.Completion
		if c.Outcome != trakkar.OutcomeFailed || !strings.Contains(strings.ToLower(deref(c.Error)), want) {
			t.Errorf("%s: outcome %q error %q, want failed with %q", scenario, c.Outcome, deref(c.Error), want)
			continue
		}
		if !hasEvent(rv.Events, trakkar.EventError, deref(c.Error)) {
			t.Errorf("%s: classified message not in the task's events:\n%s", scenario, eventTexts(rv.Events))
		}
	}
}

func modelEnvFor(provider string) []string {
	if provider == supervisor.ProviderCursor {
		return []string{"CURSOR_API_KEY=" + modelKey}
	}
	return []string{"ANTHROPIC_API_KEY=" + modelKey}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

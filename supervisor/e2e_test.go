package supervisor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// Three tasks delegated at once become three containers, three pushed branches,
// three PRs and three completed runs.
func TestThreeTasksBecomeThreePullRequests(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	keys := []string{"WEB-1", "WEB-2", "WEB-3"}
	for i, k := range keys {
		_, _, err := e.stand.CreateTask(standin.NewTask{
			Key:   k,
			Title: fmt.Sprintf("Add note number %d", i+1),
			Description: fmt.Sprintf("Write a note.\nfake:scenario=edit\nfake:delay=700ms\nfake:write=notes/%s.md=note %d from the agent\n",
				strings.ToLower(k), i+1),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.start(e.config(func(c *supervisor.Config) { c.Network = supervisor.NetworkOpen })) // the product's default

	// While they run, the three containers exist side by side, labelled.
	seen := map[string]bool{}
	waitFor(t, 90*time.Second, "three task containers at once", func() bool {
		for _, c := range e.managedContainers() {
			seen[c.ID] = true
			if c.Labels[supervisor.LabelManaged] != "true" || c.Labels[supervisor.LabelRunID] == "" {
				t.Fatalf("container %s lacks labels: %v", c.ID, c.Labels)
			}
		}
		return len(seen) >= 3
	})

	prs := map[string]bool{}
	byBranch := map[string]trakkar.Task{}
	for i, k := range keys {
		rv := e.waitCompleted(k, 120*time.Second)
		c := rv.Completion
		if c.Outcome != trakkar.OutcomeSucceeded || c.PullRequest == nil {
			t.Fatalf("%s: outcome %q pr %v error %v\nevents:\n%s", k, c.Outcome, c.PullRequest, deref(c.Error), eventTexts(rv.Events))
		}
		prs[c.PullRequest.URL] = true
		assertSeqContiguous(t, rv.Events)
		if !strings.Contains(eventTexts(rv.Events), "Pull request opened") {
			t.Errorf("%s: no PR event in:\n%s", k, eventTexts(rv.Events))
		}
		branch := c.PullRequest.Branch
		tv, _ := e.stand.TaskByKey(k)
		byBranch[branch] = tv.Task
		if !strings.HasPrefix(branch, "trakkar/"+strings.ToLower(k)+"-") {
			t.Errorf("%s: branch %q", k, branch)
		}
		_, files := e.gh.Branch(t, "acme", "web", branch)
		want := fmt.Sprintf("note %d from the agent", i+1)
		if got := files["notes/"+strings.ToLower(k)+".md"]; !strings.Contains(got, want) {
			t.Errorf("%s: pushed file = %q, want %q", k, got, want)
		}
		// The worktree goes to the trash after the completion is sent, so the
		// completion can be seen a moment before the worktree is gone.
		wt := filepath.Join(e.repo, ".trakkar-worktrees", strings.ToLower(k))
		waitFor(t, 10*time.Second, k+": worktree removed after the PR", func() bool {
			_, err := os.Stat(wt)
			return os.IsNotExist(err)
		})
	}
	if len(prs) != 3 {
		t.Fatalf("want 3 distinct PR URLs, got %v", prs)
	}
	got := e.gh.PRs("acme", "web")
	if len(got) != 3 {
		t.Fatalf("fake GitHub has %d PRs, want 3", len(got))
	}
	for _, pr := range got {
		task, ok := byBranch[pr.Head]
		if !ok {
			t.Fatalf("PR head %q matches no task", pr.Head)
		}
		if pr.Base != "main" || pr.Title != task.Title || !strings.Contains(pr.Body, task.URL) || pr.Draft {
			t.Errorf("PR %+v does not match task %+v", pr, task)
		}
		if strings.Contains(pr.Body, ghToken) || strings.Contains(pr.Body, modelKey) {
			t.Errorf("PR body leaks a secret")
		}
	}
	waitFor(t, 30*time.Second, "task containers removed", func() bool { return len(e.managedContainers()) == 0 })
}

// Stop pressed mid-run: the container goes away within seconds, the run ends
// "stopped", the worktree stays and no PR is opened.
func TestStopMidRun(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{lease: 3})
	task, _, err := e.stand.CreateTask(standin.NewTask{Key: "WEB-7", Title: "Long job", Description: "fake:scenario=hang\n"})
	if err != nil {
		t.Fatal(err)
	}
	e.start(e.config(nil))
	waitFor(t, 60*time.Second, "agent running", func() bool {
		rv, ok := e.lastRun("WEB-7")
		return ok && len(e.managedContainers()) == 1 && strings.Contains(eventTexts(rv.Events), "Container started")
	})
	pressed := time.Now()
	if err := e.stand.Stop(task.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "container gone after Stop", func() bool { return len(e.managedContainers()) == 0 })
	gone := time.Since(pressed)
	rv := e.waitCompleted("WEB-7", 30*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeStopped {
		t.Fatalf("outcome %q, want stopped", rv.Completion.Outcome)
	}
	// Heartbeat every lease/3 = 1s, then SIGTERM; the fake exits on SIGTERM.
	if gone > slowHost*10*time.Second {
		t.Errorf("container took %s to go after Stop", gone)
	}
	if _, err := os.Stat(filepath.Join(e.repo, ".trakkar-worktrees", "web-7")); err != nil {
		t.Errorf("worktree not kept: %v", err)
	}
	if n := len(e.gh.PRs("acme", "web")); n != 0 {
		t.Errorf("%d PRs opened for a stopped run", n)
	}
}

// A failing agent ends "failed" with its reason, keeps the worktree and opens
// no PR; an agent that changes nothing ends "no_changes".
func TestFailureAndNoChanges(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	for _, nt := range []standin.NewTask{
		{Key: "WEB-10", Title: "Break", Description: "fake:scenario=fail\n"},
		{Key: "WEB-11", Title: "Nothing to do", Description: "fake:scenario=noop\n"},
	} {
		if _, _, err := e.stand.CreateTask(nt); err != nil {
			t.Fatal(err)
		}
	}
	e.start(e.config(nil))

	rv := e.waitCompleted("WEB-10", 90*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeFailed || deref(rv.Completion.Error) == "" {
		t.Fatalf("failing agent: outcome %q error %q", rv.Completion.Outcome, deref(rv.Completion.Error))
	}
	if !hasEvent(rv.Events, trakkar.EventError, deref(rv.Completion.Error)) {
		t.Errorf("failure not visible in events:\n%s", eventTexts(rv.Events))
	}
	if _, err := os.Stat(filepath.Join(e.repo, ".trakkar-worktrees", "web-10")); err != nil {
		t.Errorf("worktree of the failed run not kept: %v", err)
	}

	rv = e.waitCompleted("WEB-11", 90*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeNoChanges || rv.Completion.PullRequest != nil {
		t.Fatalf("noop agent: outcome %q pr %v\n%s", rv.Completion.Outcome, rv.Completion.PullRequest, eventTexts(rv.Events))
	}
	if n := len(e.gh.PRs("acme", "web")); n != 0 {
		t.Errorf("%d PRs opened, want none", n)
	}
}

// --once works what the first poll returned and then returns by itself.
func TestOnce(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "WEB-20", Title: "Once", Description: "fake:scenario=edit\n"}); err != nil {
		t.Fatal(err)
	}
	// Also without the agent's git repository (--no-agent-git).
	s := e.start(e.config(func(c *supervisor.Config) {
		c.Once = true
		c.Publish = supervisor.PublishBranch
		c.NoAgentGit = true
	}))
	if err := s.wait(t, 120*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	rv, _ := e.lastRun("WEB-20")
	if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest != nil {
		t.Fatalf("once run: %+v", rv.Completion)
	}
	if n := len(e.gh.PRs("acme", "web")); n != 0 {
		t.Errorf("--publish branch opened %d PRs", n)
	}
	// A task delegated after --once finished is left for the next runner.
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "WEB-21", Title: "Later"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if rv, _ := e.lastRun("WEB-21"); rv.Run.Status != trakkar.StatusQueued {
		t.Fatalf("run after --once was touched: %q", rv.Run.Status)
	}
}

// --dry-run claims and reads the task, starts no container, pushes nothing and
// leaves the run to be re-queued when its lease lapses.
func TestDryRun(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{lease: 1})
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "WEB-30", Title: "Dry", Description: "fake:scenario=edit\n"}); err != nil {
		t.Fatal(err)
	}
	s := e.start(e.config(func(c *supervisor.Config) { c.Once = true; c.DryRun = true }))
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	rv, _ := e.lastRun("WEB-30")
	if rv.RunnerID != e.runner || rv.Completion != nil {
		t.Fatalf("dry run: runner %q completion %+v", rv.RunnerID, rv.Completion)
	}
	if !strings.Contains(eventTexts(rv.Events), "Dry run") {
		t.Errorf("no dry-run event:\n%s", eventTexts(rv.Events))
	}
	if n := len(e.managedContainers()); n != 0 {
		t.Errorf("dry run created %d containers", n)
	}
	if _, err := os.Stat(filepath.Join(e.repo, ".trakkar-worktrees", "web-30")); !os.IsNotExist(err) {
		t.Errorf("dry run created a worktree")
	}
	waitFor(t, 10*time.Second, "run re-queued after its lease lapsed", func() bool {
		e.stand.ExpireLeases()
		rv, _ := e.lastRun("WEB-30")
		return rv.Run.Status == trakkar.StatusQueued && rv.Run.Attempt == 2
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// hasEvent reports whether an event of the type carries the text.
func hasEvent(evs []trakkar.Event, typ, text string) bool {
	for _, ev := range evs {
		if ev.Type == typ && strings.Contains(ev.Text, text) {
			return true
		}
	}
	return false
}

// A change to a protected path is refused before anything is committed: the
// run fails with the list of refused paths, the workspace stays, no PR.
func TestImportPolicyRefusesProtectedPath(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "SEC-1", Title: "Touch CI",
		Description: "fake:write=.github/workflows/ci.yml=on: push\nfake:write=ok.txt=fine\nfake:write=.git=gitdir: /tmp/evil-planted\n"}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(nil))
	rv := e.waitCompleted("SEC-1", 90*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeFailed || !strings.Contains(deref(rv.Completion.Error), ".github/workflows/ci.yml") {
		t.Fatalf("outcome %q error %q", rv.Completion.Outcome, deref(rv.Completion.Error))
	}
	if !hasEvent(rv.Events, trakkar.EventError, "refused") {
		t.Errorf("refusal not shown in the task:\n%s", eventTexts(rv.Events))
	}
	wt := filepath.Join(e.repo, ".trakkar-worktrees", "sec-1")
	if _, err := os.Stat(filepath.Join(wt, ".github", "workflows", "ci.yml")); err != nil {
		t.Errorf("workspace not kept for inspection: %v", err)
	}
	if n := len(e.gh.PRs("acme", "web")); n != 0 {
		t.Errorf("%d PRs opened for a refused change", n)
	}
	// The kept workspace is safe to open: its .git pointer is the real one again.
	if b, err := os.ReadFile(filepath.Join(wt, ".git")); err != nil || strings.Contains(string(b), "evil-planted") ||
		!strings.Contains(string(b), filepath.Join(".git", "worktrees")) {
		t.Errorf("kept workspace's .git pointer: %q %v", b, err)
	}
	if out := gitCmd(t, e.repo, "branch", "--list", "trakkar/sec-1-*", "--format=%(objectname)"); out != gitCmd(t, e.repo, "rev-parse", "origin/main") {
		t.Errorf("the refused change was committed: branch at %q", out)
	}
}

// Hostile task text becomes a safe branch name and a single-line PR title; the
// task is worked normally.
func TestHostileTaskTitle(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	title := "--upload-pack=touch /tmp/pwned ../../etc/passwd $(rm -rf ~) `id`\nsecond line ü"
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "BAD-1", Title: title, Description: "fake:write=ok.txt=fine\n"}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(nil))
	rv := e.waitCompleted("BAD-1", 90*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
		t.Fatalf("%+v\n%s", rv.Completion, eventTexts(rv.Events))
	}
	branch := rv.Completion.PullRequest.Branch
	for _, bad := range []string{" ", "..", "$", "`", "/etc", "\n", "--"} {
		if strings.Contains(strings.TrimPrefix(branch, "trakkar/"), bad) {
			t.Fatalf("branch %q contains %q", branch, bad)
		}
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Fatal("a task title ran a command")
	}
	prs := e.gh.PRs("acme", "web")
	if len(prs) != 1 || strings.Contains(prs[0].Title, "\n") {
		t.Fatalf("PRs: %+v", prs)
	}
}

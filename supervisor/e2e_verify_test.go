package supervisor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// newVerifyEnv is an env whose agent has verify command cmd.
func newVerifyEnv(t *testing.T, cmd string) *env {
	t.Helper()
	return newEnv(t, envOpts{agent: trakkar.Agent{VerifyCommand: &cmd}})
}

// dropCaches removes the dependency cache volumes the test's runs created
// (the trakkar-agent CLI turns them on by default).
func (e *env) dropCaches() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := supervisor.PruneCaches(ctx, e.dc, e.repo); err != nil {
		e.t.Logf("prune caches: %v", err)
	}
}

func (e *env) verifyConfig(mod func(*supervisor.Config)) supervisor.Config {
	return e.config(func(c *supervisor.Config) {
		c.DependencyCaches = true
		c.VerifyRetries = 2
		c.VerifyTimeout = time.Minute
		if mod != nil {
			mod(c)
		}
	})
}

func createTask(t *testing.T, e *env, key, description string) {
	t.Helper()
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: "Task " + key, Description: description}); err != nil {
		t.Fatal(err)
	}
}

func countEvents(evs []trakkar.Event, typ, prefix string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ && strings.HasPrefix(ev.Text, prefix) {
			n++
		}
	}
	return n
}

// logText is every verify output line the task received.
func logText(evs []trakkar.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Type == trakkar.EventLog && ev.Data["source"] == "verify" {
			b.WriteString(ev.Text + "\n")
		}
	}
	return b.String()
}

// A passing verify: the run shows it, its output arrives as log events, the
// command runs without the model credential, and the PR names the command and
// how long it took.
func TestVerifyPasses(t *testing.T) {
	parallel(t)
	const cmd = `echo "checking $(cat app.txt)"; echo "model key: ${ANTHROPIC_API_KEY:-none}"; test "$(cat app.txt)" = ok`
	e := newVerifyEnv(t, cmd)
	createTask(t, e, "VER-1", "Make it ok\nfake:write=app.txt=ok\n")
	e.start(e.verifyConfig(nil))

	rv := e.waitCompleted("VER-1", 120*time.Second)
	c := rv.Completion
	if c.Outcome != trakkar.OutcomeSucceeded || c.PullRequest == nil || c.PullRequest.Draft {
		t.Fatalf("outcome %q pr %+v error %q\n%s", c.Outcome, c.PullRequest, deref(c.Error), eventTexts(rv.Events))
	}
	if n := countEvents(rv.Events, trakkar.EventStatus, "Verifying: "+cmd); n != 1 {
		t.Errorf("%d \"Verifying\" status events, want 1:\n%s", n, eventTexts(rv.Events))
	}
	if !hasEvent(rv.Events, trakkar.EventStatus, "Verify passed in") {
		t.Errorf("no pass event:\n%s", eventTexts(rv.Events))
	}
	out := logText(rv.Events)
	if !strings.Contains(out, "checking ok") || !strings.Contains(out, "model key: none") {
		t.Errorf("verify output (must run without the model key):\n%s", out)
	}
	prs := e.gh.PRs("acme", "web")
	if len(prs) != 1 {
		t.Fatalf("%d PRs, want 1", len(prs))
	}
	body := prs[0].Body
	if !strings.Contains(body, "## Verification\n") || !strings.Contains(body, "`"+cmd+"` passed in ") || prs[0].Draft {
		t.Errorf("PR body does not name the passing command and its duration (draft %v):\n%s", prs[0].Draft, body)
	}
	assertSeqContiguous(t, rv.Events)
}

// The first verify fails; the resumed agent fixes it; the second passes and a
// normal PR is opened.
func TestVerifyFailsOnceAndTheAgentFixesIt(t *testing.T) {
	parallel(t)
	const cmd = `grep -q fixed app.txt || { echo "app.txt says: $(cat app.txt)"; exit 3; }`
	e := newVerifyEnv(t, cmd)
	createTask(t, e, "VER-2", "Fix the app\nfake:write=app.txt=broken\nfake:fix-write=app.txt=fixed\n")
	e.start(e.verifyConfig(nil))

	rv := e.waitCompleted("VER-2", 180*time.Second)
	c := rv.Completion
	if c.Outcome != trakkar.OutcomeSucceeded || c.PullRequest == nil || c.PullRequest.Draft {
		t.Fatalf("outcome %q pr %+v error %q\n%s", c.Outcome, c.PullRequest, deref(c.Error), eventTexts(rv.Events))
	}
	texts := eventTexts(rv.Events)
	if n := countEvents(rv.Events, trakkar.EventStatus, "Verifying: "); n != 2 {
		t.Errorf("%d verify rounds, want 2:\n%s", n, texts)
	}
	if !hasEvent(rv.Events, trakkar.EventError, "Verify failed: "+cmd+" exited with code 3") ||
		!strings.Contains(logText(rv.Events), "app.txt says: broken") {
		t.Errorf("the first failure is not visible:\n%s", texts)
	}
	if !hasEvent(rv.Events, trakkar.EventStatus, "resuming the agent's session") || !strings.Contains(texts, "Resumed session") {
		t.Errorf("the fix round did not resume the agent's session:\n%s", texts)
	}
	_, files := e.gh.Branch(t, "acme", "web", c.PullRequest.Branch)
	if got := files["app.txt"]; got != "fixed" {
		t.Errorf("pushed app.txt = %q, want the fix", got)
	}
	if _, ok := files["TRAKKAR_FAKE.md"]; ok {
		t.Errorf("the fix round changed more than the fix")
	}
	prs := e.gh.PRs("acme", "web")
	if len(prs) != 1 || !strings.Contains(prs[0].Body, "after 1 fix round by the agent") {
		t.Fatalf("PRs %+v", prs)
	}
	if c.Usage.Turns == 0 || c.AgentSessionID == nil {
		t.Errorf("usage or session lost over the fix round: %+v", c)
	}
}

// A verify that keeps failing: with PRs, a draft PR whose body shows the
// failure; with --publish branch, no PR. Either way the run fails with the tail.
func TestVerifyKeepsFailing(t *testing.T) {
	t.Parallel()
	const cmd = `echo "running 3 tests"; echo "FAIL: TestCheckout (0.01s)"; exit 1`
	for _, publish := range []string{supervisor.PublishPR, supervisor.PublishBranch} {
		t.Run(publish, func(t *testing.T) {
			parallel(t)
			e := newVerifyEnv(t, cmd)
			createTask(t, e, "VER-3", "Try\nfake:write=app.txt=attempt\n")
			e.start(e.verifyConfig(func(c *supervisor.Config) { c.VerifyRetries = 1; c.Publish = publish }))

			rv := e.waitCompleted("VER-3", 180*time.Second)
			c := rv.Completion
			reason := deref(c.Error)
			if c.Outcome != trakkar.OutcomeFailed || !strings.Contains(reason, "verify failed: "+cmd+" exited with code 1 (after 1 fix round)") ||
				!strings.Contains(reason, "FAIL: TestCheckout (0.01s)") {
				t.Fatalf("outcome %q error %q\n%s", c.Outcome, reason, eventTexts(rv.Events))
			}
			if n := countEvents(rv.Events, trakkar.EventStatus, "Verifying: "); n != 2 {
				t.Errorf("%d verify rounds, want 2 (1 retry)", n)
			}
			prs := e.gh.PRs("acme", "web")
			switch publish {
			case supervisor.PublishPR:
				if len(prs) != 1 || !prs[0].Draft || c.PullRequest == nil || !c.PullRequest.Draft || c.PullRequest.URL == "" {
					t.Fatalf("want one draft PR in the completion; PRs %+v completion PR %+v", prs, c.PullRequest)
				}
				if b := prs[0].Body; !strings.Contains(b, "## Verification failed") || !strings.Contains(b, "FAIL: TestCheckout") {
					t.Errorf("draft PR body does not show the failure:\n%s", b)
				}
			case supervisor.PublishBranch:
				if len(prs) != 0 || c.PullRequest != nil {
					t.Fatalf("--publish branch opened a PR: %+v %+v", prs, c.PullRequest)
				}
				if !hasEvent(rv.Events, trakkar.EventStatus, "no pull request is opened with --publish branch") {
					t.Errorf("the missing PR is not reported:\n%s", eventTexts(rv.Events))
				}
				branch := gitCmd(t, e.repo, "branch", "--list", "trakkar/ver-3-*", "--format=%(refname:short)")
				if _, files := e.gh.Branch(t, "acme", "web", branch); files["app.txt"] != "attempt" {
					t.Errorf("the branch was not pushed: %v", files)
				}
			}
		})
	}
}

// A verify command that outlives --timeout is stopped (SIGTERM, then SIGKILL
// after the grace period, since this one ignores SIGTERM) and the run fails as
// a timeout. The agent itself is not timed.
func TestVerifyTimeoutKills(t *testing.T) {
	parallel(t)
	const cmd = `trap "" TERM; echo "started"; sleep 300`
	e := newVerifyEnv(t, cmd)
	createTask(t, e, "VER-4", "Slow checks\nfake:delay=1s\nfake:write=app.txt=x\n")
	e.start(e.verifyConfig(func(c *supervisor.Config) {
		c.VerifyTimeout, c.StopGrace, c.VerifyRetries = 2*time.Second, time.Second, 0
	}))

	waitFor(t, 90*time.Second, "the heartbeat to say verifying", func() bool {
		rv, ok := e.lastRun("VER-4")
		return ok && rv.LastState == trakkar.StateVerifying
	})
	started := time.Now()
	rv := e.waitCompleted("VER-4", 60*time.Second)
	took := time.Since(started)
	c := rv.Completion
	if c.Outcome != trakkar.OutcomeFailed || !strings.Contains(deref(c.Error), "verify failed: "+cmd+" timed out after 2s and was killed") ||
		!strings.Contains(deref(c.Error), "started") {
		t.Fatalf("outcome %q error %q\n%s", c.Outcome, deref(c.Error), eventTexts(rv.Events))
	}
	// 2 s timeout + 1 s grace + publishing: 4 s here, longer on a loaded
	// engine, and still far below the command's 300 s.
	if took > 150*time.Second {
		t.Errorf("the run took %s after verify started", took)
	}
	// The agent ran for about 9s (a 1s pause per output line), longer than the
	// verify timeout, and was not cut short: only verify has a timer.
	if !hasEvent(rv.Events, trakkar.EventMessage, "Done. I wrote app.txt") {
		t.Errorf("the agent did not finish its work:\n%s", eventTexts(rv.Events))
	}
	if prs := e.gh.PRs("acme", "web"); len(prs) != 1 || !prs[0].Draft || !strings.Contains(prs[0].Body, "timed out after 2s") {
		t.Errorf("PRs: %+v", prs)
	}
	waitFor(t, 30*time.Second, "task containers removed", func() bool { return len(e.managedContainers()) == 0 })
}

// node_modules of the main checkout is visible in two concurrent tasks; what
// one task writes there is seen by neither the other task nor the main
// checkout, and is not committed.
func TestSharedFolderIsPrivatePerTask(t *testing.T) {
	parallel(t)
	const cmd = `cat node_modules/pkg/index.js && ls node_modules/pkg`
	e := newVerifyEnv(t, cmd)
	pkg := filepath.Join(e.repo, "node_modules", "pkg")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "index.js"), []byte("module.exports = 'shared-v1'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		createTask(t, e, "SHR-"+strings.ToUpper(k), "Use the module\nfake:delay=500ms\n"+
			"fake:write=node_modules/pkg/from-"+k+".txt="+k+"\nfake:write="+k+".txt="+k+"\n")
	}
	e.start(e.verifyConfig(nil)) // Share nil: node_modules by default, because it exists

	seen := map[string]bool{}
	waitFor(t, 90*time.Second, "both tasks' containers at once", func() bool {
		cs := e.managedContainers()
		for _, c := range cs {
			seen[c.ID] = true
		}
		return len(cs) >= 2
	})
	for _, k := range []string{"a", "b"} {
		other := map[string]string{"a": "b", "b": "a"}[k]
		key := "SHR-" + strings.ToUpper(k)
		rv := e.waitCompleted(key, 120*time.Second)
		if rv.Completion.Outcome != trakkar.OutcomeSucceeded {
			t.Fatalf("%s: %q %q\n%s", key, rv.Completion.Outcome, deref(rv.Completion.Error), eventTexts(rv.Events))
		}
		out := logText(rv.Events)
		if !strings.Contains(out, "shared-v1") || !strings.Contains(out, "from-"+k+".txt") {
			t.Errorf("%s: the shared module or the task's own write is missing:\n%s", key, out)
		}
		if strings.Contains(out, "from-"+other+".txt") {
			t.Errorf("%s sees the other task's write:\n%s", key, out)
		}
		_, files := e.gh.Branch(t, "acme", "web", rv.Completion.PullRequest.Branch)
		if files[k+".txt"] != k {
			t.Errorf("%s: its own file was not pushed: %v", key, files)
		}
		for f := range files {
			if strings.HasPrefix(f, "node_modules/") {
				t.Errorf("%s: committed %s from the shared folder", key, f)
			}
		}
	}
	entries, err := os.ReadDir(pkg)
	if err != nil || len(entries) != 1 || entries[0].Name() != "index.js" {
		t.Errorf("the main checkout's node_modules changed: %v %v", entries, err)
	}
}

// A task's verify rounds reuse its verify caches; the next task starts with
// empty ones; every cache folder is writable by the task user; the volumes
// are labelled per task and role, and prune drops them all.
func TestCacheVolumesArePerTaskAndReusedByItsVerifyRounds(t *testing.T) {
	parallel(t)
	const cmd = `if [ -f "$npm_config_cache/marker" ]; then echo "cache hit: $(cat "$npm_config_cache/marker")"; else echo "cache miss"; fi
cat key.txt > "$npm_config_cache/marker"
for d in "$npm_config_cache" "$YARN_CACHE_FOLDER" "$pnpm_config_store_dir" "$PIP_CACHE_DIR" "$GOMODCACHE" "$GOCACHE" "$CARGO_HOME"; do
  touch "$d/probe" || exit 1
done
echo "caches writable"
test -f fixed.txt`
	e := newVerifyEnv(t, cmd)
	e.start(e.verifyConfig(nil))
	// The first round fails (no fixed.txt), the fix round writes it, and the
	// second round finds the first round's marker.
	createTask(t, e, "CCH-1", "First\nfake:write=key.txt=first-task\nfake:fix-write=fixed.txt=yes\n")
	rv := e.waitCompleted("CCH-1", 120*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("first: %q %q\n%s", rv.Completion.Outcome, deref(rv.Completion.Error), eventTexts(rv.Events))
	}
	if out := logText(rv.Events); !strings.Contains(out, "cache miss") || !strings.Contains(out, "caches writable") ||
		!strings.Contains(out, "cache hit: first-task") {
		t.Fatalf("first task's verify rounds:\n%s", out)
	}
	createTask(t, e, "CCH-2", "Second\nfake:write=key.txt=second-task\nfake:write=fixed.txt=yes\n")
	rv = e.waitCompleted("CCH-2", 120*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("second: %q %q\n%s", rv.Completion.Outcome, deref(rv.Completion.Error), eventTexts(rv.Events))
	}
	if out := logText(rv.Events); !strings.Contains(out, "cache miss") || strings.Contains(out, "cache hit") {
		t.Fatalf("the second task's verify saw the first task's cache:\n%s", out)
	}

	ctx := context.Background()
	vols, err := e.dc.ListVolumes(ctx, map[string]string{supervisor.LabelCacheRepo: ""})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, task := range []string{"cch-1", "cch-2"} {
		for _, role := range []string{supervisor.CacheAgent, supervisor.CacheVerify} {
			want[supervisor.CacheVolumeName(e.repo, task, role, "npm")] = true
		}
	}
	prefix := strings.TrimSuffix(supervisor.CacheVolumeName(e.repo, "", "", ""), "--")
	mine := 0
	for _, v := range vols {
		if !strings.HasPrefix(v.Name, prefix) {
			continue
		}
		mine++
		delete(want, v.Name)
		if v.Labels[supervisor.LabelTaskKey] == "" || v.Labels[supervisor.LabelCacheRole] == "" {
			t.Errorf("volume %s labels %v", v.Name, v.Labels)
		}
	}
	if mine != 4*7 || len(want) > 0 {
		t.Errorf("%d cache volumes for the repository, want 28 (7 tools, 2 tasks, agent and verify); missing %v", mine, want)
	}
	waitFor(t, 30*time.Second, "task containers removed", func() bool { return len(e.managedContainers()) == 0 })
	n, err := supervisor.PruneCaches(ctx, e.dc, e.repo)
	if err != nil || n != 4*7 {
		t.Fatalf("prune caches: removed %d, err %v", n, err)
	}
	left, err := e.dc.ListVolumes(ctx, map[string]string{supervisor.LabelCacheRepo: ""})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range left {
		if strings.HasPrefix(v.Name, prefix) {
			t.Errorf("cache volume %s left after prune", v.Name)
		}
	}
}

// Stop pressed while verify runs: the verify container goes within the grace
// period, the run ends stopped, the workspace stays and no PR is opened.
func TestStopDuringVerify(t *testing.T) {
	parallel(t)
	const cmd = `echo "verifying slowly"; sleep 300`
	e := newVerifyEnv(t, cmd)
	task, _, err := e.stand.CreateTask(standin.NewTask{Key: "VER-5", Title: "Stop me", Description: "fake:write=app.txt=x\n"})
	if err != nil {
		t.Fatal(err)
	}
	e.start(e.verifyConfig(nil))
	waitFor(t, 90*time.Second, "verify running", func() bool {
		rv, ok := e.lastRun("VER-5")
		return ok && strings.Contains(logText(rv.Events), "verifying slowly")
	})
	pressed := time.Now()
	if err := e.stand.Stop(task.ID); err != nil {
		t.Fatal(err)
	}
	rv := e.waitCompleted("VER-5", 30*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeStopped {
		t.Fatalf("outcome %q error %q\n%s", rv.Completion.Outcome, deref(rv.Completion.Error), eventTexts(rv.Events))
	}
	if took := time.Since(pressed); took > slowHost*15*time.Second {
		t.Errorf("stopping verify took %s", took)
	}
	waitFor(t, 10*time.Second, "verify container gone", func() bool { return len(e.managedContainers()) == 0 })
	if _, err := os.Stat(filepath.Join(e.repo, ".trakkar-worktrees", "ver-5", "app.txt")); err != nil {
		t.Errorf("workspace not kept: %v", err)
	}
	if n := len(e.gh.PRs("acme", "web")); n != 0 {
		t.Errorf("%d PRs opened for a stopped run", n)
	}
}

package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/fakeagent"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// fakeBinDir holds the fake `claude` and `cursor-agent`, built once for the package's tests.
var fakeBinDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "worker-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeBinDir = filepath.Join(dir, "bin")
	// go test puts its own GOROOT/bin first on PATH, so this is the toolchain
	// that built the test.
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(os.Stderr, "find the go tool: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	for _, fake := range []string{"claude", "cursor-agent"} {
		build := exec.Command(goTool, "build", "-o", filepath.Join(fakeBinDir, fake),
			"github.com/trakkar/trakkar-agent/internal/fakeagent/"+fake)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build fake %s: %v\n%s", fake, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness is one container's worth of directories for a worker run.
type harness struct {
	t                 *testing.T
	in, out, ws, home string
	env               []string
	stdout, stderr    *testimage.SyncBuffer
	killAfter         time.Duration
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{t: t, in: filepath.Join(root, "in"), out: filepath.Join(root, "out"),
		ws: filepath.Join(root, "workspace"), home: filepath.Join(root, "home")}
	for _, d := range []string{h.in, h.out, h.ws, h.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.env = []string{"PATH=" + fakeBinDir + ":/usr/bin:/bin", "HOME=" + h.home, "ANTHROPIC_API_KEY=sk-ant-test"}
	if os.Geteuid() == 0 {
		// The fake, like claude, refuses bypass mode as root without the sandbox marker.
		h.env = append(h.env, "IS_SANDBOX=1")
	}
	return h
}

func (h *harness) writeJob(j workerproto.Job) {
	h.t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.in, workerproto.JobFile), b, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) config() Config {
	h.stdout, h.stderr = &testimage.SyncBuffer{}, &testimage.SyncBuffer{}
	return Config{InDir: h.in, OutDir: h.out, Workspace: h.ws, Stdout: h.stdout, Stderr: h.stderr,
		Env: h.env, killAfter: h.killAfter}
}

// run executes the worker to completion, bounded in time.
func (h *harness) run(j workerproto.Job) (int, []workerproto.Line, workerproto.Result) {
	h.t.Helper()
	h.writeJob(j)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Run(ctx, h.config())
	return code, h.lines(), h.result()
}

func (h *harness) lines() []workerproto.Line {
	h.t.Helper()
	var out []workerproto.Line
	for _, raw := range strings.Split(strings.TrimSpace(h.stdout.String()), "\n") {
		if raw == "" {
			continue
		}
		var l workerproto.Line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			h.t.Fatalf("worker stdout line is not an event: %q: %v", raw, err)
		}
		if l.At.IsZero() {
			h.t.Errorf("event %q has no timestamp", raw)
		}
		out = append(out, l)
	}
	return out
}

func (h *harness) result() workerproto.Result {
	h.t.Helper()
	var res workerproto.Result
	b, err := os.ReadFile(filepath.Join(h.out, workerproto.ResultFile))
	if err != nil {
		h.t.Fatalf("read result: %v", err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		h.t.Fatalf("decode result: %v", err)
	}
	return res
}

func (h *harness) transcript(sid string) string {
	dir, err := fakeagent.ConfigDir(h.env)
	if err != nil {
		h.t.Fatal(err)
	}
	return fakeagent.TranscriptPath(dir, h.ws, sid)
}

const sid1 = "3f1c2a9e-5b7d-4c11-9a0e-2b8f6d4e7a10"

func claudeJob(prompt string) workerproto.Job {
	return workerproto.Job{Provider: "claude_code", Prompt: prompt, SessionID: sid1}
}

func texts(lines []workerproto.Line, typ string) []string {
	var out []string
	for _, l := range lines {
		if l.Type == typ {
			out = append(out, l.Text)
		}
	}
	return out
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read transcript: %v", err)
	}
	return strings.Count(string(b), "\n")
}

func TestRunNewSessionThenResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	code, lines, res := h.run(claudeJob("Add the docs page\nfake:write=docs/page.md=hello"))
	if code != workerproto.ExitOK {
		t.Fatalf("exit %d, stderr %q, result %+v", code, h.stderr.String(), res)
	}
	if len(lines) < 2 || lines[0].Type != workerproto.TypeStatus || lines[0].Text != "Running claude" ||
		lines[1].Text != "Agent started (model claude-sonnet-4-5-20250929)" {
		t.Errorf("first events = %+v, want Running claude then Agent started", lines)
	}
	if got := texts(lines, workerproto.TypeTool); strings.Join(got, "|") != "Find *|Write docs/page.md" {
		t.Errorf("tool events = %q", got)
	}
	if res.Outcome != workerproto.OutcomeSucceeded || res.Summary != "Done. I wrote docs/page.md." || res.SessionID != sid1 || res.Error != "" {
		t.Errorf("result = %+v", res)
	}
	if res.Usage.Turns != 3 || res.Usage.OutputTokens != 150 || res.Usage.InputTokens != 3330 || res.Usage.CostUSD != 0.0375 {
		t.Errorf("usage = %+v", res.Usage)
	}
	if b, err := os.ReadFile(filepath.Join(h.ws, "docs", "page.md")); err != nil || string(b) != "hello" {
		t.Errorf("docs/page.md = %q, %v; want hello", b, err)
	}
	tr := h.transcript(sid1)
	before := countLines(t, tr)

	// Follow-up in a fresh "container": same workspace path and config dir.
	code, lines, res = h.run(workerproto.Job{Provider: "claude_code", Prompt: "Now say bye\nfake:write=docs/page.md=bye",
		SessionID: sid1, Resume: true})
	if code != workerproto.ExitOK {
		t.Fatalf("resume exit %d, stderr %q", code, h.stderr.String())
	}
	msgs := texts(lines, workerproto.TypeMessage)
	if len(msgs) == 0 || !strings.HasPrefix(msgs[0], "Resumed session "+sid1) {
		t.Errorf("messages = %q, want the resumed session first", msgs)
	}
	if got := texts(lines, workerproto.TypeTool); strings.Join(got, "|") != "Find *|Read docs/page.md|Edit docs/page.md" {
		t.Errorf("resume tool events = %q", got)
	}
	if res.SessionID != sid1 || res.Outcome != workerproto.OutcomeSucceeded {
		t.Errorf("resume result = %+v", res)
	}
	if after := countLines(t, tr); after <= before {
		t.Errorf("transcript has %d lines after resume, %d before: not appended", after, before)
	}
	entries, _ := os.ReadDir(filepath.Dir(tr))
	if len(entries) != 1 {
		t.Errorf("slug dir holds %d entries, want the one transcript", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(h.ws, "docs", "page.md")); string(b) != "bye" {
		t.Errorf("docs/page.md = %q after resume, want bye", b)
	}
}

func TestRunResumeKeepsCanonicalSessionIDWhenInitChurns(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if code, _, _ := h.run(claudeJob("first")); code != workerproto.ExitOK {
		t.Fatalf("first run exit %d: %s", code, h.stderr.String())
	}
	code, _, res := h.run(workerproto.Job{Provider: "claude_code", Prompt: "again\nfake:churn-session-id", SessionID: sid1, Resume: true})
	if code != workerproto.ExitOK || res.SessionID != sid1 {
		t.Errorf("exit %d session %q, want 0 and %s", code, res.SessionID, sid1)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		job       func(h *harness) workerproto.Job
		env       func(env []string) []string
		wantCode  int
		wantClass string
		wantError string // exact, or prefix when it ends with "*"
	}{
		{name: "resume missing", job: func(*harness) workerproto.Job {
			return workerproto.Job{Provider: "claude_code", Prompt: "x", SessionID: sid1, Resume: true}
		}, wantCode: workerproto.ExitAgentFailed, wantClass: ClassSessionNotFound, wantError: "the session to resume was not found"},
		{name: "resume missing as result", job: func(*harness) workerproto.Job {
			return workerproto.Job{Provider: "claude_code", Prompt: "x\nfake:resume-error=result", SessionID: sid1, Resume: true}
		}, wantCode: workerproto.ExitAgentFailed, wantClass: ClassSessionNotFound, wantError: "the session to resume was not found"},
		{name: "session id in use", job: func(h *harness) workerproto.Job {
			if err := os.MkdirAll(filepath.Dir(h.transcript(sid1)), 0o755); err != nil {
				h.t.Fatal(err)
			}
			if err := os.WriteFile(h.transcript(sid1), []byte("{}\n"), 0o600); err != nil {
				h.t.Fatal(err)
			}
			return claudeJob("x")
		}, wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
			wantError: "claude exited with status 1: Error: Session ID " + sid1 + " is already in use."},
		{name: "usage limit", job: job("fake:scenario=usage-limit"), wantCode: workerproto.ExitAgentFailed,
			wantClass: ClassUsageLimit, wantError: "Claude usage limit reached; resets *"},
		{name: "usage limit legacy", job: job("fake:scenario=usage-limit-legacy"), wantCode: workerproto.ExitAgentFailed,
			wantClass: ClassUsageLimit, wantError: "Claude usage limit reached; resets 20*"},
		{name: "credit", job: job("fake:scenario=credit"), wantCode: workerproto.ExitAgentFailed,
			wantClass: ClassCredit, wantError: "Anthropic API credit balance is too low"},
		{name: "invalid key", job: job("fake:scenario=auth"), wantCode: workerproto.ExitAgentFailed,
			wantClass: ClassAuth, wantError: authHint},
		{name: "not logged in", job: job("hello"), env: func(env []string) []string {
			return dropEnv(env, "ANTHROPIC_API_KEY")
		}, wantCode: workerproto.ExitAgentFailed, wantClass: ClassAuth, wantError: authHint},
		{name: "max turns", job: func(*harness) workerproto.Job {
			j := claudeJob("fake:scenario=max-turns")
			j.ExtraArgs = []string{"--max-turns", "3"}
			return j
		}, wantCode: workerproto.ExitAgentFailed, wantClass: ClassMaxTurns, wantError: "the agent hit the maximum number of turns (3)"},
		{name: "generic failure", job: job("fake:scenario=fail"), wantCode: workerproto.ExitAgentFailed,
			wantClass: ClassAgentError, wantError: "The agent could not complete the task: make test failed"},
		{name: "unknown extra flag", job: func(*harness) workerproto.Job {
			j := claudeJob("x")
			j.ExtraArgs = []string{"--bogus"}
			return j
		}, wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed, wantError: "claude exited with status 1: error: unknown option '--bogus'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tc.env != nil {
				h.env = tc.env(h.env)
			}
			code, lines, res := h.run(tc.job(h))
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, h.stderr.String())
			}
			if res.Outcome != workerproto.OutcomeFailed || res.SessionID != sid1 {
				t.Errorf("result = %+v, want failed for %s", res, sid1)
			}
			checkClassifiedError(t, lines, res, tc.wantClass, tc.wantError)
		})
	}
}

// checkClassifiedError checks res.Error against wantError (exact, or a prefix
// when it ends with "*") and that the last event reports it with wantClass.
func checkClassifiedError(t *testing.T, lines []workerproto.Line, res workerproto.Result, wantClass, wantError string) {
	t.Helper()
	if p, ok := strings.CutSuffix(wantError, "*"); ok {
		if !strings.HasPrefix(res.Error, p) || res.Error == p {
			t.Errorf("error = %q, want prefix %q", res.Error, p)
		}
	} else if res.Error != wantError {
		t.Errorf("error = %q, want %q", res.Error, wantError)
	}
	if len(lines) == 0 {
		t.Fatal("no events")
	}
	last := lines[len(lines)-1]
	if last.Type != workerproto.TypeError || last.Text != res.Error || last.Data["class"] != wantClass {
		t.Errorf("last event = %+v, want the classified error with class %q", last, wantClass)
	}
}

func job(prompt string) func(*harness) workerproto.Job {
	return func(*harness) workerproto.Job { return claudeJob(prompt) }
}

func dropEnv(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func TestRunCrashReportsStderrTail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	code, _, res := h.run(claudeJob("fake:scenario=crash"))
	if code != workerproto.ExitCLICrashed {
		t.Fatalf("exit %d, want %d", code, workerproto.ExitCLICrashed)
	}
	if !strings.HasPrefix(res.Error, "claude exited with status 2: ") {
		t.Errorf("error = %q", res.Error)
	}
	h.checkStderrTail(res, "Node.js v20.19.0")
}

// checkStderrTail checks that the fake's crash (ending with lastLine) reached
// the worker's stderr whole and the result's error as its last lines only.
func (h *harness) checkStderrTail(res workerproto.Result, lastLine string) {
	h.t.Helper()
	if n := strings.Count(res.Error, "\n") + 1; n > 10 {
		h.t.Errorf("error holds %d lines, want at most 10", n)
	}
	if !strings.Contains(res.Error, "frame12 ") || !strings.HasSuffix(res.Error, lastLine) || strings.Contains(res.Error, "TypeError") {
		h.t.Errorf("error should hold the last stderr lines only: %q", res.Error)
	}
	if !strings.Contains(h.stderr.String(), "TypeError: Cannot read properties") {
		h.t.Errorf("the CLI's stderr was not passed through to the worker's stderr")
	}
}

func TestRunStreamsEverythingAndSkipsNoise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prompt      string
		wantMsgs    int
		wantSummary string
	}{
		{"fake:scenario=chatty\nfake:count=300", 300, "Finished after 300 notes."},
		{"Fix it\nfake:scenario=unknown-events", 2, "Done. I wrote TRAKKAR_FAKE.md."},
		{"Fix it\nfake:scenario=truncated", 2, "I'll make the requested change.\n\nDone. I wrote TRAKKAR_FAKE.md."},
		{"Nothing\nfake:scenario=noop", 1, "Nothing needs to change for: Nothing"},
		{"Fix it slowly\nfake:scenario=slow\nfake:delay=5ms", 2, "Done. I wrote TRAKKAR_FAKE.md."},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.prompt, "\n", " "), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			code, lines, res := h.run(claudeJob(tc.prompt))
			if code != workerproto.ExitOK || res.Outcome != workerproto.OutcomeSucceeded {
				t.Fatalf("exit %d result %+v stderr %q", code, res, h.stderr.String())
			}
			if got := len(texts(lines, workerproto.TypeMessage)); got != tc.wantMsgs {
				t.Errorf("%d message events, want %d", got, tc.wantMsgs)
			}
			if res.Summary != tc.wantSummary {
				t.Errorf("summary = %q, want %q", res.Summary, tc.wantSummary)
			}
			for _, l := range lines {
				if l.Type == workerproto.TypeError || l.Type == workerproto.TypeLog || strings.Contains(l.Text, "Hel") && l.Type != workerproto.TypeMessage {
					t.Errorf("unexpected event %+v", l)
				}
			}
		})
	}
}

func TestRunStop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		prompt string
	}{
		{"sigterm", "fake:scenario=hang"},
		{"sigterm ignored", "fake:scenario=hang\nfake:ignore-sigterm"},
		{"slow stream", "fake:scenario=slow\nfake:delay=300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.killAfter = 500 * time.Millisecond
			res := h.runStopped(claudeJob(tc.prompt))
			if res.Outcome != workerproto.OutcomeStopped || res.SessionID != sid1 || res.Error != "" {
				t.Errorf("result = %+v, want stopped", res)
			}
			if _, err := os.Stat(h.transcript(sid1)); err != nil {
				t.Errorf("transcript of the stopped session: %v", err)
			}
		})
	}
}

// runStopped starts the worker on j, stops it once the agent has said
// something, checks that it stopped promptly with ExitStopped, and returns the
// result.
func (h *harness) runStopped(j workerproto.Job) workerproto.Result {
	h.t.Helper()
	h.writeJob(j)
	cfg := h.config()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Run(ctx, cfg) }()
	waitFor(h.t, func() bool { return strings.Contains(h.stdout.String(), `"type":"message"`) })
	stoppedAt := time.Now()
	cancel()
	select {
	case code := <-done:
		if code != workerproto.ExitStopped {
			h.t.Errorf("exit %d, want %d", code, workerproto.ExitStopped)
		}
		// Bounds a stop that waited for the agent; slack for a loaded host.
		if d := time.Since(stoppedAt); d > 10*time.Second {
			h.t.Errorf("stop took %v", d)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("worker did not stop")
	}
	return h.result()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunStoppedBeforeStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeJob(claudeJob("fake:write=x.txt=y"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code := Run(ctx, h.config()); code != workerproto.ExitStopped {
		t.Errorf("exit %d, want %d", code, workerproto.ExitStopped)
	}
	if _, err := os.Stat(filepath.Join(h.ws, "x.txt")); err == nil {
		t.Error("the CLI ran although the worker was already stopped")
	}
	if res := h.result(); res.Outcome != workerproto.OutcomeStopped {
		t.Errorf("result = %+v", res)
	}
}

func TestRunCLIMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env = append(dropEnv(h.env, "PATH"), "PATH=/nonexistent:"+t.TempDir())
	code, lines, res := h.run(claudeJob("x"))
	if code != workerproto.ExitCLIMissing {
		t.Errorf("exit %d, want %d", code, workerproto.ExitCLIMissing)
	}
	if res.Outcome != workerproto.OutcomeFailed || res.Error != "claude CLI not found in the image" {
		t.Errorf("result = %+v", res)
	}
	if len(lines) != 1 || lines[0].Type != workerproto.TypeError || lines[0].Text != res.Error || lines[0].Data["class"] != ClassCLIMissing {
		t.Errorf("events = %+v, want one cli_missing error", lines)
	}
}

func TestRunBadJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		job     string // "" = no job file
		wantErr string
	}{
		{"missing", "", "read job: "},
		{"not json", "{nope", "bad job file "},
		{"no provider", `{"prompt":"x","session_id":"` + sid1 + `"}`, "bad job: no provider"},
		{"unknown provider", `{"provider":"gpt","prompt":"x","session_id":"` + sid1 + `"}`, `bad job: unknown provider "gpt" (supported: claude_code, cursor)`},
		{"empty prompt", `{"provider":"claude_code","prompt":"  ","session_id":"` + sid1 + `"}`, "bad job: job has an empty prompt"},
		{"no session", `{"provider":"claude_code","prompt":"x"}`, "bad job: job has no session_id"},
		{"session not uuid", `{"provider":"claude_code","prompt":"x","session_id":"abc"}`, `bad job: job session_id "abc" is not a UUID`},
		{"flag-like session", `{"provider":"claude_code","prompt":"x","session_id":"--help","resume":true}`, "bad job: job session_id and model must not start with '-'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tc.job != "" {
				if err := os.WriteFile(filepath.Join(h.in, workerproto.JobFile), []byte(tc.job), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code := Run(context.Background(), h.config())
			if code != workerproto.ExitUsage {
				t.Errorf("exit %d, want %d", code, workerproto.ExitUsage)
			}
			if n := strings.Count(h.stderr.String(), "\n"); n != 1 || !strings.Contains(h.stderr.String(), tc.wantErr) {
				t.Errorf("stderr = %q, want one line with %q", h.stderr.String(), tc.wantErr)
			}
			res := h.result()
			if res.Outcome != workerproto.OutcomeFailed || !strings.HasPrefix(res.Error, tc.wantErr) {
				t.Errorf("result = %+v, want failed with %q", res, tc.wantErr)
			}
			lines := h.lines()
			if len(lines) != 1 || lines[0].Type != workerproto.TypeError || lines[0].Data["class"] != ClassBadJob {
				t.Errorf("events = %+v, want one bad_job error", lines)
			}
		})
	}
}

func TestRunPassesOnlyAllowedEnv(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env = append(h.env,
		"CLAUDECODE=1", "TRAKKAR_TOKEN=secret", "TRAKKAR_IN_DIR="+h.in, "GITHUB_TOKEN=ghp_x", "SSH_AUTH_SOCK=/tmp/agent",
		"CLAUDE_CODE_ENTRYPOINT=cli", "LANG=C.UTF-8", "HTTPS_PROXY=http://proxy:3128", "NO_PROXY=localhost",
		"CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-x", "DISABLE_AUTOUPDATER=0", "PWD=/somewhere/else")
	got := h.childEnv(claudeJob)
	want := []string{
		"ANTHROPIC_API_KEY=sk-ant-test", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-x",
		"DISABLE_AUTOUPDATER=1", "HOME=" + h.home, "HTTPS_PROXY=http://proxy:3128", "LANG=C.UTF-8", "NO_PROXY=localhost",
		"PATH=" + fakeBinDir + ":/usr/bin:/bin",
	}
	if os.Geteuid() == 0 {
		want = append(want, "IS_SANDBOX=1")
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("child env:\n got %q\nwant %q", got, want)
	}
}

// childEnv runs a no-op job made by newJob and returns the environment the
// CLI saw, sorted.
func (h *harness) childEnv(newJob func(prompt string) workerproto.Job) []string {
	h.t.Helper()
	envFile := filepath.Join(h.t.TempDir(), "env")
	code, _, _ := h.run(newJob("fake:scenario=noop\nfake:env-file=" + envFile))
	if code != workerproto.ExitOK {
		h.t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	b, err := os.ReadFile(envFile)
	if err != nil {
		h.t.Fatal(err)
	}
	got := strings.Fields(string(b))
	sort.Strings(got)
	return got
}

func TestRunWorkspaceMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ws = filepath.Join(h.ws, "gone")
	code, _, res := h.run(claudeJob("x"))
	if code != workerproto.ExitUsage || res.Error != "workspace "+h.ws+" is not a directory" {
		t.Errorf("exit %d result %+v", code, res)
	}
}

func TestConfigFromEnv(t *testing.T) {
	c := Config{Env: []string{"TRAKKAR_IN_DIR=/i", "TRAKKAR_OUT_DIR=/o", "TRAKKAR_WORKSPACE=/w"}}.withDefaults()
	if c.InDir != "/i" || c.OutDir != "/o" || c.Workspace != "/w" {
		t.Errorf("env overrides: %+v", c)
	}
	c = Config{InDir: "/x"}.withDefaults()
	if c.InDir != "/x" || c.OutDir != workerproto.OutDir || c.Workspace != workerproto.Workspace || c.killAfter != defaultKillAfter {
		t.Errorf("defaults: %+v", c)
	}
}

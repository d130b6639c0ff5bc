package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trakkar/trakkar-agent/internal/fakeagent"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

func TestCursorArgs(t *testing.T) {
	base := []string{"-p", "--output-format", "stream-json", "--force", "--trust"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		job  workerproto.Job
		want []string
	}{
		{workerproto.Job{Prompt: "Fix it"}, with("--", "Fix it")},
		{workerproto.Job{Prompt: "--help me", Model: "gpt-5", ExtraArgs: []string{"--stream-partial-output"}},
			with("--model", "gpt-5", "--stream-partial-output", "--", "--help me")},
		{workerproto.Job{Prompt: "again", SessionID: "chat-1", Resume: true, ExtraArgs: []string{"--approve-mcps"}},
			with("--resume", "chat-1", "--approve-mcps", "--", "again")},
	}
	for _, tc := range tests {
		if got := (cursorAgent{}).Args(tc.job); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Args(%+v) = %q, want %q", tc.job, got, tc.want)
		}
	}
	if got := (cursorAgent{}).Stdin(workerproto.Job{Prompt: "x"}); got != "" {
		t.Errorf("Stdin = %q, want nothing: the prompt is an argument", got)
	}
}

func TestCursorEnv(t *testing.T) {
	got := (cursorAgent{}).Env([]string{"HOME=/h", "CURSOR_API_KEY=old", "CURSOR_API_KEY=new", "ANTHROPIC_API_KEY=x",
		"TRAKKAR_TOKEN=t", "NO_OPEN_BROWSER=0", "TZ=UTC", "LC_ALL=C", "https_proxy=http://p:1"})
	want := []string{"HOME=/h", "CURSOR_API_KEY=new", "TZ=UTC", "LC_ALL=C", "https_proxy=http://p:1",
		"PATH=" + defaultPath, "NO_OPEN_BROWSER=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Env = %q, want %q", got, want)
	}
}

func TestCursorValidate(t *testing.T) {
	tests := []struct {
		job  workerproto.Job
		want string // "" = valid
	}{
		{workerproto.Job{Prompt: "x"}, ""},
		{workerproto.Job{Prompt: "x", SessionID: "0198c0de-1111-4222-8333-444455556666", Resume: true}, ""},
		{workerproto.Job{Prompt: " \n"}, "job has an empty prompt"},
		{workerproto.Job{Prompt: "x", Resume: true}, "job resumes a chat but has no session_id"},
		{workerproto.Job{Prompt: "x", SessionID: "abc"}, "job has a session_id but does not resume: cursor-agent chooses the id of a new chat"},
		{workerproto.Job{Prompt: "x", SessionID: "--help", Resume: true}, "job session_id and model must not start with '-'"},
		{workerproto.Job{Prompt: "x", Model: "-v"}, "job session_id and model must not start with '-'"},
		{workerproto.Job{Prompt: "x", SessionID: "a b", Resume: true}, "job session_id is not a chat id"},
		{workerproto.Job{Prompt: "x", SessionID: "../x", Resume: true}, "job session_id is not a chat id"},
	}
	for _, tc := range tests {
		err := (cursorAgent{}).Validate(tc.job)
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.job, err, tc.want)
		}
	}
}

func TestCursorToolSummaryEdgeCases(t *testing.T) {
	tests := []struct {
		kind string
		call map[string]any
		name string
		want string
	}{
		{"readToolCall", nil, "readToolCall", "Read"},
		{"shellToolCall", map[string]any{"args": map[string]any{"command": " \n"}}, "shellToolCall", "Shell"},
		{"editToolCall", map[string]any{"args": map[string]any{"filePath": "/workspace/a/b.go"}}, "editToolCall", "Edit a/b.go"},
		{"mcpToolCall", map[string]any{"args": map[string]any{"name": "lookup"}}, "mcpToolCall", "MCP: lookup"},
		{"mcpToolCall", nil, "mcpToolCall", "MCP tool"},
		{"function", map[string]any{"name": "x\x1b[2Jy"}, "xy", "xy"},
		{"function", map[string]any{}, "function", "function"},
		{"grepToolCall", map[string]any{"args": map[string]any{"pattern": "a\nb"}}, "grepToolCall", `Search "a b"`},
	}
	for _, tc := range tests {
		name, got := cursorToolSummary(tc.kind, tc.call, "/workspace")
		if name != tc.name || got != tc.want {
			t.Errorf("cursorToolSummary(%s, %v) = %q, %q; want %q, %q", tc.kind, tc.call, name, got, tc.name, tc.want)
		}
	}
}

// cursorHarness is a harness whose environment logs cursor-agent in.
func cursorHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.env = []string{"PATH=" + fakeBinDir + ":/usr/bin:/bin", "HOME=" + h.home, "CURSOR_API_KEY=key_test"}
	return h
}

func cursorJob(prompt string) workerproto.Job {
	return workerproto.Job{Provider: "cursor", Prompt: prompt}
}

func TestCursorRunNewChatThenResume(t *testing.T) {
	t.Parallel()
	h := cursorHarness(t)
	code, lines, res := h.run(cursorJob("Add the docs page\nfake:write=docs/page.md=hello"))
	if code != workerproto.ExitOK {
		t.Fatalf("exit %d, stderr %q, result %+v", code, h.stderr.String(), res)
	}
	if len(lines) < 2 || lines[0].Text != "Running cursor-agent" || lines[1].Text != "Agent started (model Auto)" {
		t.Errorf("first events = %+v, want Running cursor-agent then Agent started", lines)
	}
	if got := texts(lines, workerproto.TypeTool); strings.Join(got, "|") != "List .|Write docs/page.md" {
		t.Errorf("tool events = %q", got)
	}
	if got := texts(lines, workerproto.TypeMessage); strings.Join(got, "|") != "I'll make the requested change.|Done. I wrote docs/page.md." {
		t.Errorf("messages = %q", got)
	}
	chatID := res.SessionID
	if _, err := uuid.Parse(chatID); err != nil {
		t.Fatalf("session id %q is not the chat's uuid", chatID)
	}
	if res.Outcome != workerproto.OutcomeSucceeded || res.Error != "" ||
		res.Summary != "I'll make the requested change.Done. I wrote docs/page.md." {
		t.Errorf("result = %+v", res)
	}
	if res.Usage != (workerproto.Usage{DurationMS: res.Usage.DurationMS, InputTokens: 9000, OutputTokens: 120}) || res.Usage.CostUSD != 0 {
		t.Errorf("usage = %+v", res.Usage)
	}
	if b, err := os.ReadFile(filepath.Join(h.ws, "docs", "page.md")); err != nil || string(b) != "hello" {
		t.Errorf("docs/page.md = %q, %v; want hello", b, err)
	}
	chat := fakeagent.CursorChatPath(h.home, chatID)
	before := countLines(t, chat)

	// Follow-up in a fresh "container" with the same HOME state.
	code, lines, res = h.run(workerproto.Job{Provider: "cursor", Prompt: "Now say bye\nfake:write=docs/page.md=bye",
		SessionID: chatID, Resume: true, Model: "sonnet-4"})
	if code != workerproto.ExitOK {
		t.Fatalf("resume exit %d, stderr %q", code, h.stderr.String())
	}
	if len(lines) < 2 || lines[1].Text != "Agent started (model Sonnet 4)" {
		t.Errorf("first events = %+v, want the model from the job", lines)
	}
	msgs := texts(lines, workerproto.TypeMessage)
	if len(msgs) == 0 || !strings.HasPrefix(msgs[0], "Resumed chat "+chatID+" ") {
		t.Errorf("messages = %q, want the resumed chat first", msgs)
	}
	if got := texts(lines, workerproto.TypeTool); strings.Join(got, "|") != "List .|Read docs/page.md|Edit docs/page.md" {
		t.Errorf("resume tool events = %q", got)
	}
	if res.SessionID != chatID || res.Outcome != workerproto.OutcomeSucceeded {
		t.Errorf("resume result = %+v", res)
	}
	if after := countLines(t, chat); after <= before {
		t.Errorf("chat has %d entries after resume, %d before: not appended", after, before)
	}
	if entries, _ := os.ReadDir(filepath.Dir(chat)); len(entries) != 1 {
		t.Errorf("chat dir holds %d entries, want the one chat", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(h.ws, "docs", "page.md")); string(b) != "bye" {
		t.Errorf("docs/page.md = %q after resume, want bye", b)
	}
}

func TestCursorRunResumeKeepsChatIDWhenInitChurns(t *testing.T) {
	t.Parallel()
	h := cursorHarness(t)
	code, _, first := h.run(cursorJob("first\nfake:scenario=noop"))
	if code != workerproto.ExitOK {
		t.Fatalf("first run exit %d: %s", code, h.stderr.String())
	}
	code, _, res := h.run(workerproto.Job{Provider: "cursor", Prompt: "again\nfake:churn-session-id", SessionID: first.SessionID, Resume: true})
	if code != workerproto.ExitOK || res.SessionID != first.SessionID {
		t.Errorf("exit %d session %q, want 0 and %s", code, res.SessionID, first.SessionID)
	}
}

func TestCursorRunFailures(t *testing.T) {
	t.Parallel()
	missing := uuid.NewString()
	tests := []struct {
		name      string
		job       workerproto.Job
		env       func(env []string) []string
		wantCode  int
		wantClass string
		wantError string // exact, or prefix when it ends with "*"
		wantChat  string // "*" = any uuid
	}{
		{name: "resume missing", job: workerproto.Job{Provider: "cursor", Prompt: "x", SessionID: missing, Resume: true},
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassSessionNotFound, wantError: "the chat to resume was not found", wantChat: missing},
		{name: "not logged in", job: cursorJob("hello"), env: func(env []string) []string { return dropEnv(env, "CURSOR_API_KEY") },
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassAuth, wantError: cursorAuthHint},
		{name: "another tool's key does not log in", job: cursorJob("hello"), env: func(env []string) []string {
			return append(dropEnv(env, "CURSOR_API_KEY"), "ANTHROPIC_API_KEY=sk-ant-x", "CURSOR_TOKEN=x")
		}, wantCode: workerproto.ExitAgentFailed, wantClass: ClassAuth, wantError: cursorAuthHint},
		{name: "agent gives up", job: cursorJob("fake:scenario=fail"), wantCode: workerproto.ExitAgentFailed, wantClass: ClassAgentError,
			wantError: "The agent could not complete the task: make test failed", wantChat: "*"},
		{name: "unknown extra flag", job: workerproto.Job{Provider: "cursor", Prompt: "x", ExtraArgs: []string{"--bogus"}},
			wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed, wantError: "cursor-agent exited with status 1: error: unknown option '--bogus'"},
		{name: "crash", job: cursorJob("fake:scenario=crash"), wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
			wantError: "cursor-agent exited with status 1: *", wantChat: "*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := cursorHarness(t)
			if tc.env != nil {
				h.env = tc.env(h.env)
			}
			code, lines, res := h.run(tc.job)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, h.stderr.String())
			}
			if res.Outcome != workerproto.OutcomeFailed {
				t.Errorf("result = %+v, want failed", res)
			}
			switch tc.wantChat {
			case "*":
				if _, err := uuid.Parse(res.SessionID); err != nil {
					t.Errorf("session id %q, want the new chat's", res.SessionID)
				}
			default:
				if res.SessionID != tc.wantChat {
					t.Errorf("session id %q, want %q", res.SessionID, tc.wantChat)
				}
			}
			checkClassifiedError(t, lines, res, tc.wantClass, tc.wantError)
		})
	}
}

func TestCursorRunCrashReportsStderrTail(t *testing.T) {
	t.Parallel()
	h := cursorHarness(t)
	code, _, res := h.run(cursorJob("fake:scenario=crash"))
	if code != workerproto.ExitCLICrashed {
		t.Fatalf("exit %d, want %d", code, workerproto.ExitCLICrashed)
	}
	h.checkStderrTail(res, "Node.js v22.19.0")
}

func TestCursorRunStreams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		prompt      string
		extra       []string
		wantMsgs    []string // exact; nil = only count
		wantCount   int
		wantTools   string
		wantSummary string // "" = not checked
	}{
		{name: "partial output edit", prompt: "Fix it", extra: []string{"--stream-partial-output"},
			wantMsgs:  []string{"I'll make the requested change.", "Done. I wrote TRAKKAR_FAKE.md."},
			wantTools: "List .|Write TRAKKAR_FAKE.md", wantSummary: "I'll make the requested change.Done. I wrote TRAKKAR_FAKE.md."},
		{name: "partial output chatty", prompt: "fake:scenario=chatty\nfake:count=3", extra: []string{"--stream-partial-output"},
			wantMsgs: []string{"Progress note 1 of 3.", "Progress note 2 of 3.", "Progress note 3 of 3.", "Finished after 3 notes."}},
		{name: "chatty", prompt: "fake:scenario=chatty\nfake:count=300", wantCount: 301},
		{name: "unknown events", prompt: "Fix it\nfake:scenario=unknown-events",
			wantMsgs:  []string{"I'll make the requested change.", "Done. I wrote TRAKKAR_FAKE.md."},
			wantTools: "semanticSearchToolCall|Read|List .|Write TRAKKAR_FAKE.md"},
		{name: "truncated", prompt: "Fix it\nfake:scenario=truncated", wantCount: 2,
			wantSummary: "I'll make the requested change.\n\nDone. I wrote TRAKKAR_FAKE.md."},
		{name: "prompt like a flag", prompt: "--help me\nfake:scenario=noop",
			wantMsgs: []string{"Nothing needs to change for: --help me"}, wantSummary: "Nothing needs to change for: --help me"},
		{name: "slow", prompt: "Fix it slowly\nfake:scenario=slow\nfake:delay=5ms", wantCount: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := cursorHarness(t)
			j := cursorJob(tc.prompt)
			j.ExtraArgs = tc.extra
			code, lines, res := h.run(j)
			if code != workerproto.ExitOK || res.Outcome != workerproto.OutcomeSucceeded {
				t.Fatalf("exit %d result %+v stderr %q", code, res, h.stderr.String())
			}
			msgs := texts(lines, workerproto.TypeMessage)
			if tc.wantMsgs != nil && !reflect.DeepEqual(msgs, tc.wantMsgs) {
				t.Errorf("messages = %q, want %q", msgs, tc.wantMsgs)
			}
			if tc.wantMsgs == nil && len(msgs) != tc.wantCount {
				t.Errorf("%d message events, want %d", len(msgs), tc.wantCount)
			}
			if tc.wantTools != "" {
				if got := strings.Join(texts(lines, workerproto.TypeTool), "|"); got != tc.wantTools {
					t.Errorf("tools = %q, want %q", got, tc.wantTools)
				}
			}
			if tc.wantSummary != "" && res.Summary != tc.wantSummary {
				t.Errorf("summary = %q, want %q", res.Summary, tc.wantSummary)
			}
			for _, l := range lines {
				if l.Type == workerproto.TypeError || l.Type == workerproto.TypeLog || strings.Contains(l.Text, "echo of the prompt") {
					t.Errorf("unexpected event %+v", l)
				}
			}
		})
	}
}

func TestCursorRunStop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, prompt string }{
		{"sigterm", "fake:scenario=hang"},
		{"sigterm ignored", "fake:scenario=hang\nfake:ignore-sigterm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := cursorHarness(t)
			h.killAfter = 500 * time.Millisecond
			res := h.runStopped(cursorJob(tc.prompt))
			if res.Outcome != workerproto.OutcomeStopped || res.Error != "" {
				t.Errorf("result = %+v, want stopped", res)
			}
			if _, err := os.Stat(fakeagent.CursorChatPath(h.home, res.SessionID)); err != nil || res.SessionID == "" {
				t.Errorf("chat %q of the stopped run: %v", res.SessionID, err)
			}
		})
	}
}

func TestCursorRunPassesOnlyAllowedEnv(t *testing.T) {
	t.Parallel()
	h := cursorHarness(t)
	h.env = append(h.env,
		"TRAKKAR_TOKEN=secret", "TRAKKAR_IN_DIR="+h.in, "GITHUB_TOKEN=ghp_x", "SSH_AUTH_SOCK=/tmp/agent",
		"ANTHROPIC_API_KEY=sk-ant-x", "CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-x", "LANG=C.UTF-8", "TZ=UTC",
		"HTTPS_PROXY=http://proxy:3128", "NO_PROXY=localhost", "NO_OPEN_BROWSER=0", "PWD=/somewhere/else")
	got := h.childEnv(cursorJob)
	want := []string{
		"CURSOR_API_KEY=key_test", "HOME=" + h.home, "HTTPS_PROXY=http://proxy:3128", "LANG=C.UTF-8",
		"NO_OPEN_BROWSER=1", "NO_PROXY=localhost", "PATH=" + fakeBinDir + ":/usr/bin:/bin", "TZ=UTC",
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("child env:\n got %q\nwant %q", got, want)
	}
}

func TestCursorRunBadJob(t *testing.T) {
	t.Parallel()
	h := cursorHarness(t)
	code, _, res := h.run(workerproto.Job{Provider: "cursor", Prompt: "x", SessionID: uuid.NewString()})
	if code != workerproto.ExitUsage || !strings.HasPrefix(res.Error, "bad job: job has a session_id but does not resume") {
		t.Errorf("exit %d result %+v", code, res)
	}
}

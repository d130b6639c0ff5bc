package fakeagent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// newCursor is one invocation of the fake cursor-agent, logged in by env.
func newCursor(t *testing.T, args ...string) *fake {
	t.Helper()
	f := newFake(t, args...)
	f.cli = Cursor
	f.env.Environ = []string{"HOME=" + t.TempDir(), "CURSOR_API_KEY=key_test"}
	return f
}

var cursorStream = []string{"-p", "--output-format", "stream-json", "--force", "--trust"}

func cursorArgs(extra ...string) []string {
	return append(append([]string{}, cursorStream...), extra...)
}

func home(f *fake) string { return f.env.getenv("HOME") }

func TestCursorFlagErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string // replaces the logged-in environment when set
		want    string
	}{
		{"unknown flag", cursorArgs("--nope", "hi"), nil, "error: unknown option '--nope'"},
		{"missing value", cursorArgs("--model"), nil, "error: option '--model <value>' argument missing"},
		{"bad format", []string{"-p", "--output-format", "yaml", "--trust", "hi"}, nil,
			"error: option '--output-format <format>' argument 'yaml' is invalid. Allowed choices are text, json, stream-json."},
		{"partial output needs stream-json", []string{"-p", "--stream-partial-output", "--trust", "hi"}, nil,
			"Error: --stream-partial-output can only be used with --output-format stream-json"},
		{"not print mode", []string{"--trust", "hi"}, nil, "fake cursor-agent: only --print mode is supported"},
		{"bare resume", cursorArgs("--resume", "--", "hi"), nil, "fake cursor-agent: --resume needs a chat id in print mode"},
		{"no credential", cursorArgs("hi"), []string{"HOME=/nonexistent"}, cursorAuthError},
		{"auth comes before trust", []string{"-p", "hi"}, []string{"HOME=/nonexistent"}, cursorAuthError},
		{"untrusted", []string{"-p", "--output-format", "stream-json", "hi"}, nil, cursorTrustError},
		{"empty prompt", cursorArgs("--", " "), nil, cursorNoPrompt},
		{"unknown scenario", cursorArgs("fake:scenario=nope"), nil, `fake cursor-agent: unknown scenario "nope"`},
		{"claude-only scenario", cursorArgs("fake:scenario=usage-limit"), nil, `fake cursor-agent: scenario "usage-limit" is not supported`},
		{"claude-only directive", cursorArgs("x\nfake:resume-error=result"), nil,
			"fake cursor-agent: fake:resume-error is not supported (cursor-agent has no error result)"},
		{"escaping write", cursorArgs("fake:write=../x=y"), nil, `fake cursor-agent: fake:write path "../x" must stay inside the working directory`},
		{"bad workspace", cursorArgs("--workspace", "/nonexistent/ws", "hi"), nil, "Error: workspace /nonexistent/ws is not a directory"},
		{"no home", cursorArgs("hi"), []string{"CURSOR_API_KEY=k"}, "Error: HOME is not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCursor(t, tc.args...)
			if tc.environ != nil {
				f.env.Environ = tc.environ
			}
			f.runRefused(t, tc.want)
			if entries, _ := os.ReadDir(filepath.Join(home(f), ".cursor", "chats")); len(entries) != 0 {
				t.Errorf("a failed start left %d chats", len(entries))
			}
		})
	}
}

func TestCursorTrustAndCredentials(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		environ       []string
		wantKeySource string
	}{
		{"--trust", []string{"-p", "--output-format", "stream-json", "--trust", "hi"}, nil, "env"},
		{"-f trusts too", []string{"-p", "--output-format", "stream-json", "-f", "hi"}, nil, "env"},
		{"--yolo trusts too", []string{"-p", "--output-format", "stream-json", "--yolo", "hi"}, nil, "env"},
		{"--api-key", cursorArgs("--api-key", "key_flag", "hi"), []string{"HOME=" + t.TempDir()}, "flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCursor(t, tc.args...)
			if tc.environ != nil {
				f.env.Environ = tc.environ
			}
			if code := f.run(); code != 0 {
				t.Fatalf("exit %d: %s", code, f.stderr.String())
			}
			if init := f.lines(t)[0]; init["subtype"] != "init" || init["apiKeySource"] != tc.wantKeySource {
				t.Errorf("init = %v, want apiKeySource %q", init, tc.wantKeySource)
			}
		})
	}
}

func TestCursorStreamShape(t *testing.T) {
	f := newCursor(t, cursorArgs("--model", "sonnet-4", "--", "Write the greeting\nfake:write=src/hi.txt=hi\\nthere")...)
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	lines := f.lines(t)
	var kinds []string
	chatID := lines[0]["session_id"].(string)
	if _, err := uuid.Parse(chatID); err != nil {
		t.Fatalf("chat id %q is not a uuid", chatID)
	}
	if lines[0]["model"] != "Sonnet 4" || lines[0]["cwd"] != f.env.Dir || lines[0]["permissionMode"] != "default" {
		t.Errorf("init = %v", lines[0])
	}
	started := map[string]bool{}
	for _, l := range lines {
		k := l["type"].(string)
		if sub, ok := l["subtype"].(string); ok {
			k += "/" + sub
		}
		if l["session_id"] != chatID {
			t.Errorf("line %s has session_id %v", k, l["session_id"])
		}
		switch k {
		case "assistant":
			_, mid := l["model_call_id"]
			_, timed := l["timestamp_ms"]
			if mid != timed {
				t.Errorf("assistant line with model_call_id %v and timestamp_ms %v", mid, timed)
			}
			if mid {
				k += "(mid)"
			}
		case "tool_call/started", "tool_call/completed":
			id := l["call_id"].(string)
			if !strings.Contains(id, "\n") {
				t.Errorf("call id %q has no newline", id)
			}
			if tc := l["tool_call"].(map[string]any); tc["toolCallId"] != id {
				t.Errorf("toolCallId %v != call_id %q", tc["toolCallId"], id)
			}
			if k == "tool_call/started" {
				started[id] = true
			} else if !started[id] {
				t.Errorf("completed %q without a start", id)
			}
			for kind := range l["tool_call"].(map[string]any) {
				if strings.HasSuffix(kind, "ToolCall") {
					k += ":" + kind
				}
			}
		}
		kinds = append(kinds, k)
	}
	want := "system/init|user|thinking/delta|thinking/completed|assistant(mid)|tool_call/started:lsToolCall|tool_call/completed:lsToolCall|" +
		"tool_call/started:writeToolCall|tool_call/completed:writeToolCall|assistant|result/success"
	if got := strings.Join(kinds, "|"); got != want {
		t.Errorf("kinds = %s\nwant    %s", got, want)
	}
	res := lines[len(lines)-1]
	if res["is_error"] != false || res["result"] != "I'll make the requested change.Done. I wrote src/hi.txt." {
		t.Errorf("result = %v", res)
	}
	if _, ok := res["total_cost_usd"]; ok {
		t.Error("cursor-agent reports no cost")
	}
	usage, _ := res["usage"].(map[string]any)
	if usage["inputTokens"] != 3000.0 || usage["outputTokens"] != 120.0 || usage["cacheReadTokens"] != 6000.0 {
		t.Errorf("usage = %v", usage)
	}
	if b, err := os.ReadFile(filepath.Join(f.env.Dir, "src", "hi.txt")); err != nil || string(b) != "hi\nthere" {
		t.Errorf("src/hi.txt = %q, %v", b, err)
	}
	if _, err := os.Stat(CursorChatPath(home(f), chatID)); err != nil {
		t.Errorf("chat: %v", err)
	}
}

// With --stream-partial-output, deltas carry timestamp_ms only, and each model
// call ends with a repeat of its whole segment.
func TestCursorPartialOutput(t *testing.T) {
	f := newCursor(t, cursorArgs("--stream-partial-output", "fake:scenario=chatty\nfake:count=2")...)
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var deltas strings.Builder
	var segments []string
	nDeltas := 0
	for _, l := range f.lines(t) {
		if l["type"] != "assistant" {
			continue
		}
		text := l["message"].(map[string]any)["content"].([]any)[0].(map[string]any)["text"].(string)
		_, mid := l["model_call_id"]
		_, timed := l["timestamp_ms"]
		if timed && !mid {
			deltas.WriteString(text)
			nDeltas++
			continue
		}
		if deltas.String() != text {
			t.Errorf("repeat %q does not match its deltas %q", text, deltas.String())
		}
		deltas.Reset()
		segments = append(segments, text)
	}
	if want := "Progress note 1 of 2.|Progress note 2 of 2.|Finished after 2 notes."; strings.Join(segments, "|") != want {
		t.Errorf("segments = %q, want %s", segments, want)
	}
	if nDeltas < 3*len(segments) {
		t.Errorf("only %d deltas for %d segments", nDeltas, len(segments))
	}
}

func TestCursorChats(t *testing.T) {
	f := newCursor(t, cursorArgs("fake:scenario=noop\nfirst")...)
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	chatID := f.lines(t)[0]["session_id"].(string)
	path := CursorChatPath(home(f), chatID)
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("chat: %v", err)
	}

	again := *f
	again.stdout, again.stderr = bytes.Buffer{}, bytes.Buffer{}
	again.env.Stdout, again.env.Stderr = &again.stdout, &again.stderr
	again.env.Dir = t.TempDir() // chats are not tied to a directory
	again.env.Args = cursorArgs("--resume", chatID, "--", "fake:scenario=noop\nsecond")
	if code := again.run(); code != 0 {
		t.Fatalf("resume exit %d: %s", code, again.stderr.String())
	}
	lines := again.lines(t)
	if lines[0]["session_id"] != chatID || !strings.Contains(again.stdout.String(), "Resumed chat "+chatID+" (2 earlier entries).") {
		t.Errorf("resume did not continue chat %s: %s", chatID, again.stdout.String())
	}
	now, _ := os.ReadFile(path)
	if !bytes.HasPrefix(now, first) || len(now) <= len(first) {
		t.Errorf("resume did not append to the chat")
	}

	for _, missing := range []string{uuid.NewString(), "../" + chatID} {
		again.stdout.Reset()
		again.stderr.Reset()
		again.env.Args = cursorArgs("--resume="+missing, "x")
		if code := again.run(); code != 1 || strings.TrimSpace(again.stderr.String()) != "Error: Chat not found: "+missing || again.stdout.Len() != 0 {
			t.Errorf("missing resume %q: exit %d stderr %q stdout %q", missing, code, again.stderr.String(), again.stdout.String())
		}
	}
}

func TestCursorPromptIsVariadic(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-p", "--trust", "fake:scenario=noop\nfix", "the", "bug"}, "Nothing needs to change for: fix the bug"},
		{[]string{"fake:scenario=noop\n--help", "-p", "--trust"}, "Nothing needs to change for: --help"},
		{[]string{"-p", "--trust", "--", "fake:scenario=noop\n-v", "--model", "x"}, "Nothing needs to change for: -v --model x"},
	}
	for _, tc := range tests {
		f := newCursor(t, tc.args...)
		if code := f.run(); code != 0 || strings.TrimSpace(f.stdout.String()) != tc.want {
			t.Errorf("%q: exit %d stdout %q stderr %q", tc.args, code, f.stdout.String(), f.stderr.String())
		}
	}
}

func TestCursorOutputFormats(t *testing.T) {
	f := newCursor(t, "-p", "--trust", "--output-format", "json", "fake:scenario=noop\nx")
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var m map[string]any
	if err := json.Unmarshal(f.stdout.Bytes(), &m); err != nil || m["type"] != "result" || m["result"] != "Nothing needs to change for: x" {
		t.Errorf("json output = %q (%v)", f.stdout.String(), err)
	}
	fail := newCursor(t, "-p", "--trust", "fake:scenario=fail")
	if code := fail.run(); code != 1 || strings.TrimSpace(fail.stdout.String()) != "The agent could not complete the task: make test failed" {
		t.Errorf("text fail: exit %d stdout %q", code, fail.stdout.String())
	}
}

func TestCursorWorkspaceFlag(t *testing.T) {
	ws := t.TempDir()
	f := newCursor(t, cursorArgs("--workspace", ws, "fake:write=a.txt=x")...)
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	if f.lines(t)[0]["cwd"] != ws {
		t.Errorf("init cwd = %v, want %s", f.lines(t)[0]["cwd"], ws)
	}
	if _, err := os.Stat(filepath.Join(ws, "a.txt")); err != nil {
		t.Errorf("file not written in the workspace: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.env.Dir, "a.txt")); err == nil {
		t.Error("file written in the cwd instead of the workspace")
	}
}

func TestCursorStopsOnSignal(t *testing.T) {
	testStopsOnSignal(t, func(prompt string) *fake { return newCursor(t, cursorArgs(prompt)...) })
}

func TestCursorCrashAndTruncated(t *testing.T) {
	f := newCursor(t, cursorArgs("fake:scenario=crash")...)
	if code := f.run(); code != 1 || !strings.HasSuffix(strings.TrimSpace(f.stderr.String()), "Node.js v22.19.0") ||
		strings.Contains(f.stdout.String(), `"type":"result"`) {
		t.Errorf("crash: exit %d stderr %q", code, f.stderr.String())
	}
	tr := newCursor(t, cursorArgs("fake:scenario=truncated")...)
	if code := tr.run(); code != 0 || strings.HasSuffix(tr.stdout.String(), "\n") {
		t.Errorf("truncated: exit %d, stdout ends with a newline", code)
	}
	out := tr.stdout.String()
	last := out[strings.LastIndex(out, "\n")+1:]
	if !strings.HasPrefix(last, `{"`) || json.Valid([]byte(last)) {
		t.Errorf("last line %q is not a cut-off JSON line", last)
	}
}

func TestCursorChatNotWritable(t *testing.T) {
	f := newCursor(t, cursorArgs("hi")...)
	ro := filepath.Join(t.TempDir(), "home")
	if err := os.WriteFile(ro, nil, 0o600); err != nil { // a file where HOME's dir should be
		t.Fatal(err)
	}
	f.env.Environ = []string{"HOME=" + ro, "CURSOR_API_KEY=k"}
	if code := f.run(); code != 1 || f.stdout.Len() != 0 || !strings.HasPrefix(f.stderr.String(), "Error: cannot create chat: ") {
		t.Errorf("exit %d stdout %q stderr %q", code, f.stdout.String(), f.stderr.String())
	}
}

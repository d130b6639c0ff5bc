package fakeagent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testSID = "8d45afe0-0000-4000-8000-000000000001"

// fake is one invocation of the fake CLI with captured output.
type fake struct {
	cli            func(Env) int // Claude or Cursor
	env            Env
	stdout, stderr bytes.Buffer
}

func newFake(t *testing.T, args ...string) *fake {
	t.Helper()
	home := t.TempDir()
	f := &fake{cli: Claude}
	f.env = Env{
		Args:    args,
		Stdin:   strings.NewReader(""),
		Environ: []string{"HOME=" + home, "ANTHROPIC_API_KEY=sk-test"},
		Dir:     t.TempDir(),
		UID:     1000,
		Now:     func() time.Time { return time.Date(2026, 8, 1, 9, 30, 0, 0, time.UTC) },
	}
	f.env.Stdout, f.env.Stderr = &f.stdout, &f.stderr
	return f
}

func (f *fake) run() int { return f.cli(f.env) }

// lines decodes stream-json stdout.
func (f *fake) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.stdout.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// runRefused runs the fake and checks it refused to start: exit 1, want on
// stderr, nothing on stdout.
func (f *fake) runRefused(t *testing.T, want string) {
	t.Helper()
	if code := f.run(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if got := strings.TrimSpace(f.stderr.String()); got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if f.stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", f.stdout.String())
	}
}

var streamArgs = []string{"-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"}

func args(extra ...string) []string { return append(append([]string{}, streamArgs...), extra...) }

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		uid     int
		want    string
	}{
		{"stream-json needs verbose", []string{"-p", "--output-format", "stream-json", "hi"}, nil, 1000, errNeedsVerbose},
		{"stream-json needs verbose (= form)", []string{"--print", "--output-format=stream-json", "hi"}, nil, 1000, errNeedsVerbose},
		{"unknown flag", args("--nope", "hi"), nil, 1000, "error: unknown option '--nope'"},
		{"missing value", args("--model"), nil, 1000, "error: option '--model <value>' argument missing"},
		{"bad format", []string{"-p", "--output-format", "yaml", "hi"}, nil, 1000,
			"error: option '--output-format <format>' argument 'yaml' is invalid. Allowed choices are text, json, stream-json."},
		{"bad session id", args("--session-id", "not-a-uuid", "hi"), nil, 1000, "Error: Invalid session ID. Must be a valid UUID."},
		{"session id with resume", args("--session-id", testSID, "--resume", testSID, "hi"), nil, 1000, errSessionCombo},
		{"bad max turns", args("--max-turns", "0", "hi"), nil, 1000, `error: --max-turns must be a positive integer, got "0"`},
		{"not print mode", []string{"hi"}, nil, 1000, "fake claude: only --print mode is supported"},
		{"root with bypass", args("hi"), nil, 0, errRoot},
		{"root with bypass mode", []string{"-p", "--permission-mode", "bypassPermissions", "hi"}, nil, 0, errRoot},
		{"root with allow bypass", []string{"-p", "--allow-dangerously-skip-permissions", "hi"}, nil, 0, errRoot},
		{"root with IS_SANDBOX=true", args("hi"), []string{"IS_SANDBOX=true"}, 0, errRoot},
		{"empty prompt", args(), nil, 1000, errNoPrompt},
		{"stream-json input needs stream-json output", []string{"-p", "--input-format", "stream-json"}, nil, 1000,
			"Error: --input-format=stream-json requires output-format=stream-json."},
		{"unknown scenario", args("fake:scenario=nope"), nil, 1000, `fake claude: unknown scenario "nope"`},
		{"escaping write", args("fake:write=../x=y"), nil, 1000, `fake claude: fake:write path "../x" must stay inside the working directory`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.args...)
			f.env.UID = tc.uid
			f.env.Environ = append(f.env.Environ, tc.environ...)
			f.runRefused(t, tc.want)
		})
	}
}

func TestRootGuardPasses(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		uid     int
	}{
		{"non-root", args("hi"), nil, 1000},
		{"root with IS_SANDBOX=1", args("hi"), []string{"IS_SANDBOX=1"}, 0},
		{"root with bubblewrap", args("hi"), []string{"CLAUDE_CODE_BUBBLEWRAP=1"}, 0},
		{"root without bypass", []string{"-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits", "hi"}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.args...)
			f.env.UID = tc.uid
			f.env.Environ = append(f.env.Environ, tc.environ...)
			if code := f.run(); code != 0 {
				t.Errorf("exit %d, stderr %q", code, f.stderr.String())
			}
		})
	}
}

func TestNotLoggedIn(t *testing.T) {
	f := newFake(t, args("--session-id", testSID, "hello")...)
	f.env.Environ = []string{"HOME=" + t.TempDir()}
	if code := f.run(); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	lines := f.lines(t)
	if len(lines) != 2 || lines[0]["subtype"] != "init" || lines[0]["apiKeySource"] != "none" {
		t.Fatalf("lines = %v, want init then result", lines)
	}
	res := lines[1]
	if res["type"] != "result" || res["is_error"] != true || res["result"] != notLoggedIn || res["terminal_reason"] != "api_error" ||
		res["total_cost_usd"] != 0.0 || res["session_id"] != testSID {
		t.Errorf("result = %v", res)
	}
	dir, _ := ConfigDir(f.env.Environ)
	if _, err := os.Stat(TranscriptPath(dir, f.env.Dir, testSID)); err == nil {
		t.Error("a run that never reached the model wrote a transcript")
	}
}

func TestLoggedInByCredentialsFile(t *testing.T) {
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, ".credentials.json"), []byte(`{"claudeAiOauth":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake(t, args("--session-id", testSID, "hello")...)
	f.env.Environ = []string{"CLAUDE_CONFIG_DIR=" + cfg}
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	if _, err := os.Stat(TranscriptPath(cfg, f.env.Dir, testSID)); err != nil {
		t.Errorf("transcript not under CLAUDE_CONFIG_DIR: %v", err)
	}
}

func TestEditStreamShape(t *testing.T) {
	f := newFake(t, args("--session-id", testSID)...)
	f.env.Stdin = strings.NewReader("Write the greeting\nfake:write=src/hi.txt=hi\\nthere")
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	lines := f.lines(t)
	var kinds []string
	ids := map[string]int{}
	for _, l := range lines {
		k := l["type"].(string)
		if msg, ok := l["message"].(map[string]any); ok {
			content := msg["content"].([]any)
			if len(content) != 1 {
				t.Errorf("line with %d blocks, want one per line", len(content))
			}
			k += ":" + content[0].(map[string]any)["type"].(string)
			if id, ok := msg["id"].(string); ok {
				ids[id]++
			}
		}
		if l["session_id"] != testSID {
			t.Errorf("line %v has session_id %v", k, l["session_id"])
		}
		kinds = append(kinds, k)
	}
	want := "system|assistant:thinking|assistant:text|assistant:tool_use|rate_limit_event|user:tool_result|assistant:tool_use|user:tool_result|assistant:text|result"
	if got := strings.Join(kinds, "|"); got != want {
		t.Errorf("kinds = %s\nwant   %s", got, want)
	}
	repeated := false
	for _, n := range ids {
		repeated = repeated || n == 3
	}
	if !repeated {
		t.Errorf("no message.id repeated across its three block lines: %v", ids)
	}
	res := lines[len(lines)-1]
	for _, k := range []string{"subtype", "duration_ms", "duration_api_ms", "is_error", "num_turns", "session_id", "result", "usage", "total_cost_usd"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %s", k)
		}
	}
	if b, err := os.ReadFile(filepath.Join(f.env.Dir, "src", "hi.txt")); err != nil || string(b) != "hi\nthere" {
		t.Errorf("src/hi.txt = %q, %v", b, err)
	}
}

func TestSessionsOnDisk(t *testing.T) {
	f := newFake(t, args("--session-id", testSID, "first")...)
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	dir, _ := ConfigDir(f.env.Environ)
	path := TranscriptPath(dir, f.env.Dir, testSID)
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("transcript: %v", err)
	}

	again := *f
	again.stdout, again.stderr = bytes.Buffer{}, bytes.Buffer{}
	again.env.Stdout, again.env.Stderr = &again.stdout, &again.stderr
	again.env.Args = args("--session-id", testSID, "second")
	if code := again.run(); code != 1 || strings.TrimSpace(again.stderr.String()) != "Error: Session ID "+testSID+" is already in use." {
		t.Errorf("reuse: exit %d stderr %q", code, again.stderr.String())
	}

	again.stdout.Reset()
	again.stderr.Reset()
	again.env.Args = args("--resume", testSID, "second")
	if code := again.run(); code != 0 {
		t.Fatalf("resume exit %d: %s", code, again.stderr.String())
	}
	if !strings.Contains(again.stdout.String(), "Resumed session "+testSID) {
		t.Errorf("resume answer does not mention the session")
	}
	now, _ := os.ReadFile(path)
	if !bytes.HasPrefix(now, first) || len(now) <= len(first) {
		t.Errorf("resume did not append to the transcript")
	}

	again.stdout.Reset()
	again.stderr.Reset()
	other := "8d45afe0-0000-4000-8000-0000000000ff"
	again.env.Args = args("--resume", other, "x")
	if code := again.run(); code != 1 || strings.TrimSpace(again.stderr.String()) != "No conversation found with session ID: "+other {
		t.Errorf("missing resume: exit %d stderr %q", code, again.stderr.String())
	}

	// Resume is scoped to the cwd: the same id from another directory is unknown.
	again.stdout.Reset()
	again.stderr.Reset()
	again.env.Dir = t.TempDir()
	again.env.Args = args("--resume", testSID, "x")
	if code := again.run(); code != 1 || !strings.Contains(again.stderr.String(), "No conversation found") {
		t.Errorf("resume from another cwd: exit %d stderr %q", code, again.stderr.String())
	}

	again.stdout.Reset()
	again.stderr.Reset()
	again.env.Dir = f.env.Dir
	forked := "8d45afe0-0000-4000-8000-0000000000aa"
	again.env.Args = args("--resume", testSID, "--fork-session", "--session-id", forked, "x")
	if code := again.run(); code != 0 {
		t.Fatalf("fork exit %d: %s", code, again.stderr.String())
	}
	forkedTr, _ := os.ReadFile(TranscriptPath(dir, f.env.Dir, forked))
	if !bytes.HasPrefix(forkedTr, now) || len(forkedTr) <= len(now) {
		t.Errorf("fork did not copy the history into the new session")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, now) {
		t.Errorf("fork changed the original transcript")
	}
}

func TestNoSessionPersistence(t *testing.T) {
	f := newFake(t, args("--session-id", testSID, "--no-session-persistence", "hi")...)
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	dir, _ := ConfigDir(f.env.Environ)
	if _, err := os.Stat(TranscriptPath(dir, f.env.Dir, testSID)); err == nil {
		t.Error("transcript written with --no-session-persistence")
	}
}

func TestOutputFormats(t *testing.T) {
	tests := []struct {
		args  []string
		check func(out string) bool
	}{
		{[]string{"-p", "fake:scenario=noop\nnothing"}, func(out string) bool { return out == "Nothing needs to change for: nothing\n" }},
		{[]string{"-p", "--output-format", "json", "fake:scenario=noop"}, func(out string) bool {
			var m map[string]any
			return json.Unmarshal([]byte(out), &m) == nil && m["type"] == "result"
		}},
		{[]string{"-p", "--output-format", "json", "--verbose", "fake:scenario=noop"}, func(out string) bool {
			var a []map[string]any
			return json.Unmarshal([]byte(out), &a) == nil && len(a) == 3 && a[2]["type"] == "result"
		}},
	}
	for _, tc := range tests {
		f := newFake(t, tc.args...)
		if code := f.run(); code != 0 || !tc.check(f.stdout.String()) {
			t.Errorf("%q: exit %d stdout %q", tc.args, code, f.stdout.String())
		}
	}
}

func TestStreamJSONInput(t *testing.T) {
	f := newFake(t, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")
	f.env.Stdin = strings.NewReader(`{"type":"user","message":{"role":"user","content":[{"type":"text","text":"fake:scenario=noop"},{"type":"text","text":"tidy up"}]}}` + "\n")
	if code := f.run(); code != 0 || !strings.Contains(f.stdout.String(), "Nothing needs to change for: tidy up") {
		t.Errorf("exit %d stdout %q stderr %q", code, f.stdout.String(), f.stderr.String())
	}
	bad := newFake(t, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")
	bad.env.Stdin = strings.NewReader("plain text\n")
	if code := bad.run(); code != 1 || !strings.HasPrefix(bad.stderr.String(), "Error parsing streaming input line") {
		t.Errorf("plain stdin with stream-json input: exit %d stderr %q", code, bad.stderr.String())
	}
}

func TestHangStopsOnSignal(t *testing.T) {
	testStopsOnSignal(t, func(prompt string) *fake { return newFake(t, args("--session-id", testSID, prompt)...) })
}

// testStopsOnSignal checks that a hanging or slow run of the fake made by
// newRun ends on SIGTERM (or SIGINT when it ignores SIGTERM) without a result.
func testStopsOnSignal(t *testing.T, newRun func(prompt string) *fake) {
	t.Helper()
	tests := []struct {
		prompt   string
		signals  []os.Signal
		wantCode int
	}{
		{"fake:scenario=hang", []os.Signal{syscall.SIGTERM}, 143},
		{"fake:scenario=hang\nfake:ignore-sigterm", []os.Signal{syscall.SIGTERM, syscall.SIGINT}, 130},
		{"fake:scenario=slow\nfake:delay=1h", []os.Signal{syscall.SIGTERM}, 143},
	}
	for _, tc := range tests {
		f := newRun(tc.prompt)
		sigs := make(chan os.Signal, len(tc.signals))
		for _, s := range tc.signals {
			sigs <- s
		}
		f.env.Signals = sigs
		done := make(chan int, 1)
		go func() { done <- f.run() }()
		select {
		case code := <-done:
			if code != tc.wantCode {
				t.Errorf("%q: exit %d, want %d", tc.prompt, code, tc.wantCode)
			}
			if strings.Contains(f.stdout.String(), `"type":"result"`) {
				t.Errorf("%q: a stopped run printed a result", tc.prompt)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: did not stop", tc.prompt)
		}
	}
}

func TestSlug(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/home/me/my_app", "-home-me-my-app"},
		{"/Users/x/.claude", "-Users-x--claude"},
		{"/workspace", "-workspace"},
		{"/tmp/a b/é", "-tmp-a-b--"},
	}
	for _, tc := range tests {
		if got := Slug(tc.in); got != tc.want {
			t.Errorf("Slug(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := "/" + strings.Repeat("a", 300)
	got := Slug(long)
	if !strings.HasPrefix(got, "-"+strings.Repeat("a", 199)+"-") || len(got) <= 201 || got == Slug(long+"b") {
		t.Errorf("long slug = %q", got)
	}
}

func TestEnvFileDump(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	f := newFake(t, args("fake:scenario=noop\nfake:env-file="+path)...)
	if code := f.run(); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	b, _ := os.ReadFile(path)
	if got := strings.Fields(string(b)); strings.Join(got, " ") != strings.Join(f.env.Environ, " ") {
		t.Errorf("env file = %q, want %q", got, f.env.Environ)
	}
}

// chatty numbers its notes and, when asked, also leaves files behind.
func TestChattyWrites(t *testing.T) {
	cases := []struct {
		name, prompt string
		notes        int
		file         string // "" when no file is expected
	}{
		{"notes only", "fake:scenario=chatty\nfake:count=3", 3, ""},
		{"notes and a file", "fake:scenario=chatty\nfake:count=2\nfake:write=out.txt=done", 2, "done"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, args("--session-id", testSID)...)
			f.env.Stdin = strings.NewReader(c.prompt)
			if code := f.run(); code != 0 {
				t.Fatalf("exit %d: %s", code, f.stderr.String())
			}
			for i := 1; i <= c.notes; i++ {
				if n := strings.Count(f.stdout.String(), fmt.Sprintf("Progress note %d of %d.", i, c.notes)); n != 1 {
					t.Errorf("note %d appears %d times", i, n)
				}
			}
			b, err := os.ReadFile(filepath.Join(f.env.Dir, "out.txt"))
			switch {
			case c.file == "" && err == nil:
				t.Errorf("out.txt written: %q", b)
			case c.file != "" && string(b) != c.file:
				t.Errorf("out.txt = %q, %v; want %q", b, err, c.file)
			}
		})
	}
}

// The image build runs `claude --version`; the fake answers like the CLI.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-v"} {
		f := newFake(t, arg)
		if code := f.run(); code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, f.stderr.String())
		}
		if got, want := f.stdout.String(), fakeVersion+" (Claude Code)\n"; got != want {
			t.Fatalf("%s printed %q, want %q", arg, got, want)
		}
	}
}

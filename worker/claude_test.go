package worker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

func TestClassify(t *testing.T) {
	errRes := func(text string) ClaudeRun {
		return ClaudeRun{HaveResult: true, IsError: true, Subtype: "success", ResultText: text, ExitCode: 1}
	}
	with := func(r ClaudeRun, f func(*ClaudeRun)) ClaudeRun { f(&r); return r }
	tests := []struct {
		name string
		in   ClaudeRun
		want Classification
	}{
		{"success", ClaudeRun{HaveResult: true, ResultText: "Not logged in, but fine"}, Classification{}},
		{"success despite exit 1", ClaudeRun{HaveResult: true, ExitCode: 1}, Classification{}},
		{"no result exit 0", ClaudeRun{}, Classification{}},
		{"no result resume missing", ClaudeRun{ExitCode: 1, Stderr: "No conversation found with session ID: abc"},
			Classification{ClassSessionNotFound, "the session to resume was not found"}},
		{"no result auth on stderr", ClaudeRun{ExitCode: 1, Stderr: "Invalid API key · Please run /login"},
			Classification{ClassAuth, authHint}},
		{"no result crash", ClaudeRun{ExitCode: 3, Stderr: "boom\nbang"},
			Classification{ClassCrashed, "claude exited with status 3: boom\nbang"}},
		{"no result silent crash", ClaudeRun{ExitCode: 3},
			Classification{ClassCrashed, "claude exited with status 3 without output on stderr"}},
		{"killed", ClaudeRun{ExitCode: -1}, Classification{ClassCrashed, "claude was killed by a signal without output on stderr"}},
		{"not logged in", errRes("Not logged in · Please run /login"), Classification{ClassAuth, authHint}},
		{"401", with(errRes(""), func(r *ClaudeRun) { r.APIErrorStatus = 401 }), Classification{ClassAuth, authHint}},
		{"malformed token", errRes("Invalid auth token · Fix external auth token · Invalid Authorization header value"),
			Classification{ClassAuth, authHint}},
		{"assistant auth error", with(errRes("x"), func(r *ClaudeRun) { r.AssistantError = "authentication_failed" }),
			Classification{ClassAuth, authHint}},
		{"limit with login hint", errRes("You've hit your limit · resets 3am (Asia/Seoul)/login to switch to an API usage-billed account."),
			Classification{ClassUsageLimit, "Claude usage limit reached; resets 3am (Asia/Seoul)"}},
		{"weekly limit", errRes("You've hit your weekly limit · resets Mon 9am"),
			Classification{ClassUsageLimit, "Claude usage limit reached; resets Mon 9am"}},
		{"legacy limit", errRes("Claude AI usage limit reached|1751547600"),
			Classification{ClassUsageLimit, "Claude usage limit reached; resets 2025-07-03T13:00:00Z"}},
		{"429 with rate limit event", with(errRes("API Error: 429"), func(r *ClaudeRun) {
			r.APIErrorStatus, r.RateLimitResetsAt = 429, 1789049400
		}), Classification{ClassUsageLimit, "Claude usage limit reached; resets 2026-09-10T14:10:00Z"}},
		{"429 bare", with(errRes(""), func(r *ClaudeRun) { r.APIErrorStatus = 429 }),
			Classification{ClassUsageLimit, "Claude usage limit reached"}},
		{"synthetic limit", with(errRes(""), func(r *ClaudeRun) {
			r.AssistantError, r.SyntheticText = "rate_limit", "You've hit your session limit · resets 11pm (Asia/Nicosia)"
		}), Classification{ClassUsageLimit, "Claude usage limit reached; resets 11pm (Asia/Nicosia)"}},
		{"credit", errRes("Credit balance is too low"), Classification{ClassCredit, "Anthropic API credit balance is too low"}},
		{"credit interactive wording", errRes("Credit balance too low · Add funds: https://platform.claude.com/settings/billing"),
			Classification{ClassCredit, "Anthropic API credit balance is too low"}},
		{"billing error", with(errRes("x"), func(r *ClaudeRun) { r.AssistantError = "billing_error" }),
			Classification{ClassCredit, "Anthropic API credit balance is too low"}},
		{"max turns", ClaudeRun{HaveResult: true, IsError: true, Subtype: "error_max_turns", Errors: []string{"Reached maximum number of turns (7)"}, NumTurns: 8},
			Classification{ClassMaxTurns, "the agent hit the maximum number of turns (7)"}},
		{"max turns without errors", ClaudeRun{HaveResult: true, IsError: true, TerminalReason: "max_turns", NumTurns: 5},
			Classification{ClassMaxTurns, "the agent hit the maximum number of turns (5)"}},
		{"budget", ClaudeRun{HaveResult: true, IsError: true, Subtype: "error_max_budget_usd"},
			Classification{ClassMaxBudget, "the agent hit its spending limit (--max-budget-usd)"}},
		{"resume missing in errors", ClaudeRun{HaveResult: true, IsError: true, Subtype: "error_during_execution",
			Errors: []string{"No conversation found with session ID: x"}},
			Classification{ClassSessionNotFound, "the session to resume was not found"}},
		{"other text", errRes("API Error: 500\n{\"type\":\"error\"}"), Classification{ClassAgentError, `API Error: 500 {"type":"error"}`}},
		{"several errors", ClaudeRun{HaveResult: true, IsError: true, Errors: []string{"a failed", "b failed"}},
			Classification{ClassAgentError, "a failed; b failed"}},
		{"nothing said", ClaudeRun{HaveResult: true, IsError: true, Subtype: "error_during_execution"},
			Classification{ClassAgentError, "claude reported an error (error_during_execution)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.in); got != tc.want {
				t.Errorf("Classify = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClaudeArgs(t *testing.T) {
	base := []string{"-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"}
	tests := []struct {
		job  workerproto.Job
		want []string
	}{
		{workerproto.Job{SessionID: sid1}, append(base[:5:5], "--session-id", sid1)},
		{workerproto.Job{SessionID: sid1, Resume: true, Model: "opus", ExtraArgs: []string{"--max-turns", "4"}},
			append(base[:5:5], "--model", "opus", "--resume", sid1, "--max-turns", "4")},
	}
	for _, tc := range tests {
		if got := (claudeCode{}).Args(tc.job); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Args(%+v) = %q, want %q", tc.job, got, tc.want)
		}
	}
	if got := (claudeCode{}).Stdin(workerproto.Job{Prompt: "--help me"}); got != "--help me" {
		t.Errorf("Stdin = %q", got)
	}
}

func TestClaudeEnvDefaultsPathAndLastValueWins(t *testing.T) {
	got := (claudeCode{}).Env([]string{"HOME=/h", "ANTHROPIC_API_KEY=old", "ANTHROPIC_API_KEY=new", "FOO=bar", "noequals"})
	want := []string{"HOME=/h", "ANTHROPIC_API_KEY=new", "PATH=" + defaultPath, "DISABLE_AUTOUPDATER=1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Env = %q, want %q", got, want)
	}
}

func TestReadLines(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		max       int
		wantLines []string
		wantLong  []int
	}{
		{"crlf and blanks", "a\r\n\r\n  \nb\n", 100, []string{"a", "b"}, nil},
		{"no final newline", "a\nbcd", 100, []string{"a", "bcd"}, nil},
		{"exactly max", "abcd\nef\n", 4, []string{"abcd", "ef"}, nil},
		{"too long in the middle", "ab\n" + strings.Repeat("x", 50) + "\ncd\n", 10, []string{"ab", "cd"}, []int{50}},
		{"too long at the end", "ab\n" + strings.Repeat("x", 50), 10, []string{"ab"}, []int{50}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			var long []int
			err := readLines(strings.NewReader(tc.in), tc.max, func(b []byte) { lines = append(lines, string(b)) },
				func(n int) { long = append(long, n) })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(lines, tc.wantLines) || !reflect.DeepEqual(long, tc.wantLong) {
				t.Errorf("lines %q long %v; want %q %v", lines, long, tc.wantLines, tc.wantLong)
			}
		})
	}
}

func TestReadLinesHugeLineBeyondReaderBuffer(t *testing.T) {
	huge := `{"type":"user","message":{"content":[{"type":"tool_result","is_error":true,"content":"` +
		strings.Repeat("y", 3<<20) + `"}]}}`
	var got []int
	err := readLines(strings.NewReader("x\n"+huge+"\nz\n"), maxLineBytes, func(b []byte) { got = append(got, len(b)) }, func(int) {
		t.Error("line reported as too long")
	})
	if err != nil || !reflect.DeepEqual(got, []int{1, len(huge), 1}) {
		t.Errorf("got %v, %v", got, err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadLinesReturnsReadError(t *testing.T) {
	if err := readLines(failingReader{}, 10, func([]byte) {}, func(int) {}); err == nil || err.Error() != "disk on fire" {
		t.Errorf("err = %v", err)
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain\ttext\nnext", "plain\ttext\nnext"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"\x1b]0;title\x07after", "after"},
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"a\rb\x00c\x7fd\bx", "abcdx"},
		{"\x1bPdcs\x1b\\ok", "ok"},
		{"\x1b(Bok", "ok"},
		{"esc at end\x1b", "esc at end"},
		{"csi cut \x1b[12", "csi cut "},
		{"\u009b31mx", "x"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"\x1bé", "é"},
		{"héllo wörld", "héllo wörld"},
	}
	for _, tc := range tests {
		if got := cleanText(tc.in, 100); got != tc.want {
			t.Errorf("cleanText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := cleanText("abcdef", 4); got != "abc…" {
		t.Errorf("truncate = %q", got)
	}
	if got := cleanText("abcd", 4); got != "abcd" {
		t.Errorf("no truncate = %q", got)
	}
}

func TestToolSummaryPaths(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"Write", map[string]any{"file_path": "/workspace/a/b.go"}, "Write a/b.go"},
		{"Read", map[string]any{"file_path": "/workspace2/x"}, "Read /workspace2/x"},
		{"Read", map[string]any{"file_path": "/workspace/../etc/passwd"}, "Read /workspace/../etc/passwd"},
		{"MultiEdit", map[string]any{"file_path": "rel/x"}, "MultiEdit rel/x"},
		{"Bash", map[string]any{"command": "  \n" + strings.Repeat("a", 200)}, "Run: " + strings.Repeat("a", 119) + "…"},
		{"Bash", map[string]any{}, "Bash"},
		{"mcp__weird", nil, "mcp__weird"},
		{"mcp__srv__a__b", nil, "srv: a__b"},
		{"Glob", map[string]any{"pattern": "*.go\x1b[2J"}, "Find *.go"},
	}
	for _, tc := range tests {
		if got := toolSummary(tc.name, tc.in, "/workspace"); got != tc.want {
			t.Errorf("toolSummary(%s, %v) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestWriteResultIsAtomicAndReplaces(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"first", "second"} {
		if err := writeResult(dir, workerproto.Result{Outcome: workerproto.OutcomeSucceeded, Summary: s}); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != workerproto.ResultFile {
		t.Errorf("dir holds %v, want only %s", entries, workerproto.ResultFile)
	}
	b, _ := os.ReadFile(filepath.Join(dir, workerproto.ResultFile))
	if !bytes.Contains(b, []byte(`"summary": "second"`)) {
		t.Errorf("result = %s", b)
	}
	if err := writeResult(filepath.Join(dir, workerproto.ResultFile, "sub"), workerproto.Result{}); err == nil {
		t.Error("writing under a file succeeded")
	}
}

func TestTailBuffer(t *testing.T) {
	var pass bytes.Buffer
	tb := &tailBuffer{w: &pass, max: 64}
	for i := 0; i < 30; i++ {
		tb.Write([]byte("line\x1b[1m " + strings.Repeat("z", i%3) + "\n"))
	}
	tail := tb.Tail(3, 1000)
	if tail != "line\nline z\nline zz" {
		t.Errorf("tail = %q", tail)
	}
	if got := tb.Tail(10, 5); got != "…e zz" {
		t.Errorf("char-capped tail = %q", got)
	}
	if strings.Count(pass.String(), "\n") != 30 {
		t.Errorf("writes were not passed through")
	}
}

func TestLookPathIn(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	look := lookPathIn("relative:/nonexistent:" + dir)
	if p, err := look("tool"); err != nil || p != exe {
		t.Errorf("look(tool) = %q, %v", p, err)
	}
	if _, err := look("plain"); err == nil {
		t.Error("a non-executable file was found")
	}
	if _, err := lookPathIn("")("tool"); err == nil {
		t.Error("found with an empty PATH")
	}
}

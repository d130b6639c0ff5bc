package worker

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// want is an event line without its timestamp.
type want struct {
	Type string
	Text string
	Data map[string]any
}

func status(t string) want  { return want{Type: workerproto.TypeStatus, Text: t} }
func message(t string) want { return want{Type: workerproto.TypeMessage, Text: t} }
func errLine(t string) want { return want{Type: workerproto.TypeError, Text: t} }
func logLine(t string) want { return want{Type: workerproto.TypeLog, Text: t} }
func tool(name, summary, id string) want {
	return want{Type: workerproto.TypeTool, Text: summary, Data: map[string]any{"name": name, "summary": summary, "id": id}}
}

var fixedNow = time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

// parseStream runs the claude parser over raw stdout exactly as the worker does.
func parseStream(t testing.TB, raw []byte, exit processExit) ([]workerproto.Line, workerproto.Result, int, string) {
	t.Helper()
	p := newClaudeParser("11111111-2222-4333-8444-555555555555", "/workspace", func() time.Time { return fixedNow })
	return runParser(t, p, raw, exit)
}

func strip(lines []workerproto.Line) []want {
	out := []want{}
	for _, l := range lines {
		out = append(out, want{Type: l.Type, Text: l.Text, Data: l.Data})
	}
	return out
}

func TestClaudeParserFixtures(t *testing.T) {
	const sid = "11111111-2222-4333-8444-555555555555"
	authFailed := workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: sid, Error: authHint}
	tests := []struct {
		fixture   string
		exit      processExit
		wantLines []want
		wantRes   workerproto.Result
		wantCode  int
		wantClass string
	}{
		{
			fixture: "success_tools.jsonl",
			wantLines: []want{
				status("Agent started (model claude-sonnet-4-5-20250929)"),
				message("I'll look at the README."),
				tool("Read", "Read README.md", "toolu_01JGX"),
				tool("Bash", "Run: npm test -- --watch=false", "toolu_02Bash"),
				errLine("Tool failed: Error: 2 tests failed"),
				logLine("Claude API error 529 overloaded; retrying (attempt 1 of 10) in 5s"),
				tool("Task", "Subagent: Find the failing test", "toolu_03Task"),
				tool("Grep", `Search "greet\("`, "toolu_sub_grep"),
				tool("Edit", "Edit src/app.ts", "toolu_04Edit"),
				tool("mcp__github__create_issue", "github: create_issue", "toolu_05Mcp"),
				tool("TodoWrite", "Update todo list", "toolu_05Todo"),
				tool("Read", "Read /etc/hosts", "toolu_05Read"),
				message("Fixed the greeting: it now ends with a newline.\nAll tests pass."),
			},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: sid, Summary: "Fixed the greeting; all tests pass.",
				Usage: workerproto.Usage{DurationMS: 2460, Turns: 6, CostUSD: 0.0396, InputTokens: 31418, OutputTokens: 4}},
			wantCode: workerproto.ExitOK,
		},
		{
			fixture: "usage_limit.jsonl",
			exit:    processExit{Code: 1},
			wantLines: []want{
				status("Agent started (model claude-opus-4-1-20250805)"),
				message("Starting on the refactor."),
				errLine("Claude usage limit reached (five_hour); resets 2026-09-10T14:10:00Z"),
			},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: sid, Summary: "Starting on the refactor.",
				Error: "Claude usage limit reached; resets 11pm (Asia/Nicosia)",
				Usage: workerproto.Usage{DurationMS: 37992, Turns: 19, CostUSD: 1.03, InputTokens: 123, OutputTokens: 700}},
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassUsageLimit,
		},
		{
			fixture: "usage_limit_legacy.jsonl",
			exit:    processExit{Code: 1},
			wantLines: []want{
				status("Agent started (model claude-sonnet-4-20250514)"),
				message("Claude AI usage limit reached|1751547600"),
			},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: sid, Summary: "Claude AI usage limit reached|1751547600",
				Error: "Claude usage limit reached; resets 2025-07-03T13:00:00Z", Usage: workerproto.Usage{DurationMS: 512, Turns: 1}},
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassUsageLimit,
		},
		{
			fixture:   "credit.jsonl",
			exit:      processExit{Code: 1},
			wantLines: []want{status("Agent started (model claude-sonnet-4-5-20250929)")},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: sid, Error: "Anthropic API credit balance is too low",
				Usage: workerproto.Usage{DurationMS: 301, Turns: 1}},
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassCredit,
		},
		{
			fixture: "max_turns.jsonl",
			exit:    processExit{Code: 1},
			wantLines: []want{
				status("Agent started (model claude-sonnet-4-5-20250929)"),
				message("Let me explore the repository."),
				tool("Glob", "Find **/*.go", "toolu_mt1"),
				tool("WebFetch", "Fetch https://pkg.go.dev/net/http", "toolu_mt2"),
			},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: sid, Summary: "Let me explore the repository.",
				Error: "the agent hit the maximum number of turns (2)",
				Usage: workerproto.Usage{DurationMS: 10895, Turns: 3, CostUSD: 0.1657, InputTokens: 10, OutputTokens: 6}},
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassMaxTurns,
		},
		{
			fixture:   "auth.jsonl",
			exit:      processExit{Code: 1},
			wantLines: []want{status("Agent started (model claude-sonnet-4-5-20250929)")},
			wantRes:   withUsage(authFailed, workerproto.Usage{DurationMS: 40, Turns: 1}),
			wantCode:  workerproto.ExitAgentFailed, wantClass: ClassAuth,
		},
		{
			fixture:   "oauth_expired.jsonl",
			exit:      processExit{Code: 1},
			wantLines: []want{status("Agent started (model claude-sonnet-4-5-20250929)")},
			wantRes:   withUsage(authFailed, workerproto.Usage{DurationMS: 120, Turns: 1}),
			wantCode:  workerproto.ExitAgentFailed, wantClass: ClassAuth,
		},
		{
			fixture:   "resume_not_found.jsonl",
			exit:      processExit{Code: 1},
			wantLines: []want{},
			wantRes:   workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: sid, Error: "the session to resume was not found"},
			wantCode:  workerproto.ExitAgentFailed, wantClass: ClassSessionNotFound,
		},
		{
			fixture:   "truncated.jsonl",
			wantLines: []want{status("Agent started (model claude-sonnet-4-5-20250929)"), message("Updated the changelog.")},
			wantRes:   workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: sid, Summary: "Updated the changelog."},
			wantCode:  workerproto.ExitOK,
		},
		{
			fixture:   "truncated.jsonl",
			exit:      processExit{Code: 1, StderrTail: "fatal: out of memory"},
			wantLines: []want{status("Agent started (model claude-sonnet-4-5-20250929)"), message("Updated the changelog.")},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: sid, Summary: "Updated the changelog.",
				Error: "claude exited with status 1: fatal: out of memory"},
			wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
		},
		{
			fixture: "unknown_events.jsonl",
			wantLines: []want{
				status("Agent started (model claude-haiku-4-5-20251001)"),
				message("Searching the docs."),
				tool("WebSearch", `Web search "golang context"`, "toolu_ws"),
				tool("NotebookEdit", "NotebookEdit nb/a.ipynb", "toolu_nb"),
				tool("Agent", "Subagent: Review", "toolu_ag"),
				tool("FancyNewTool", "FancyNewTool", "toolu_odd"),
				tool("Read", "Read", "toolu_bad"),
				errLine("Tool failed: Tool FancyNewTool is not available"),
				message("a plain string content"),
			},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: sid, Summary: "Searching the docs.\n\na plain string content",
				Usage: workerproto.Usage{Turns: 2, CostUSD: 0.002, InputTokens: 7, OutputTokens: 3}},
			wantCode: workerproto.ExitOK,
		},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			raw := readFixture(t, "claude", tc.fixture)
			lines, res, code, class := parseStream(t, raw, tc.exit)
			if got := strip(lines); !reflect.DeepEqual(got, tc.wantLines) {
				t.Errorf("lines:\n got %+v\nwant %+v", got, tc.wantLines)
			}
			checkParsed(t, lines, res, code, class, tc.wantRes, tc.wantCode, tc.wantClass)
		})
	}
}

func withUsage(r workerproto.Result, u workerproto.Usage) workerproto.Result {
	r.Usage = u
	return r
}

func TestClaudeParserTruncatesAndCleansText(t *testing.T) {
	long := strings.Repeat("é", maxText+50)
	raw := `{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"` + long + `"}]}}` + "\n" +
		`{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"\u001b[1;31mred\u001b[0m\u0007 \u009b2Jok\u0000"}]}}` + "\n"
	lines, _, _, _ := parseStream(t, []byte(raw), processExit{})
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	if n := len([]rune(lines[0].Text)); n != maxText {
		t.Errorf("long text has %d runes, want %d", n, maxText)
	}
	if !strings.HasSuffix(lines[0].Text, "…") {
		t.Errorf("truncated text does not end with an ellipsis")
	}
	if lines[1].Text != "red ok" {
		t.Errorf("cleaned text = %q, want %q", lines[1].Text, "red ok")
	}
}

func TestClaudeParserKeepsCanonicalSessionID(t *testing.T) {
	raw := `{"type":"system","subtype":"init","session_id":"99999999-0000-4000-8000-000000000000","model":"m"}
{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"99999999-0000-4000-8000-000000000000"}
`
	_, res, _, _ := parseStream(t, []byte(raw), processExit{})
	if res.SessionID != "11111111-2222-4333-8444-555555555555" {
		t.Errorf("session id = %q, want the canonical job id", res.SessionID)
	}
}

func TestClaudeParserSuccessWordsInProseAreNotErrors(t *testing.T) {
	raw := `{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"Note: if you see Not logged in or Credit balance is too low, re-run."}]}}
{"type":"result","subtype":"success","is_error":false,"result":"You've hit your limit · resets 3pm is a message the docs mention","session_id":"x"}
`
	_, res, code, class := parseStream(t, []byte(raw), processExit{Code: 1})
	if res.Outcome != workerproto.OutcomeSucceeded || code != workerproto.ExitOK || class != "" || res.Error != "" {
		t.Errorf("got outcome %q code %d class %q error %q; want a success", res.Outcome, code, class, res.Error)
	}
}

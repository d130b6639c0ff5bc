package worker

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

const cursorChat = "0198c0de-1111-4222-8333-444455556666"

// parseCursor runs the cursor parser over raw stdout exactly as the worker does.
// resumed is the chat the job resumed ("" for a new chat).
func parseCursor(t testing.TB, raw []byte, resumed string, exit processExit) ([]workerproto.Line, workerproto.Result, int, string) {
	t.Helper()
	p := newCursorParser(resumed, "/workspace", func() time.Time { return fixedNow })
	return runParser(t, p, raw, exit)
}

func TestCursorParserFixtures(t *testing.T) {
	noResultLines := []want{
		status("Agent started (model Auto)"),
		message("Looking at the failing test."),
		tool("shellToolCall", "Run: go test ./...", "c1"),
	}
	noResultProse := "Looking at the failing test.\n\nThe test needs a fix"
	failed := func(errText string) workerproto.Result {
		return workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: cursorChat, Summary: noResultProse, Error: errText}
	}
	tests := []struct {
		name      string
		fixture   string
		resumed   string
		exit      processExit
		wantLines []want
		wantRes   workerproto.Result
		wantCode  int
		wantClass string
	}{
		{
			name: "success with tools", fixture: "success_tools.jsonl",
			wantLines: []want{
				status("Agent started (model Sonnet 4)"),
				message("Reading the file."),
				tool("readToolCall", "Read src/app.ts", "call-1\nfc_1_0"),
				tool("editToolCall", "Edit src/app.ts", "call-2"),
				tool("shellToolCall", "Run: npm test -- --watch=false", "call-3"),
				errLine("Tool failed: exit code 1: Error: 2 tests failed"),
				tool("grepToolCall", `Search "greet\("`, "call-4"),
				tool("writeToolCall", "Write CHANGELOG.md", "call-5"),
				errLine("Tool failed: EACCES: permission denied, open '/workspace/CHANGELOG.md'"),
				tool("shellToolCall", "Run: git push --force", "call-6"),
				errLine("Tool failed: rejected: Blocked by permissions.deny"),
				tool("deleteToolCall", "Delete old.txt", "call-7"),
				errLine("Tool failed: file not found"),
				tool("mcpToolCall", "github: create_issue", "call-8"),
				tool("web_search", "web_search", "call-9"),
				tool("lsToolCall", "List /etc", "call-10"),
				tool("globToolCall", "Find **/*.ts", "call-11"),
				tool("updateTodosToolCall", "Update todo list", "call-12"),
				tool("taskToolCall", "Subagent: Find the failing test", "call-13"),
				message("Fixed the greeting; the tests still fail."),
			},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: cursorChat,
				Summary: "Reading the file.Fixed the greeting; the tests still fail.",
				Usage:   workerproto.Usage{DurationMS: 24397, InputTokens: 24102 + 46720 + 12, OutputTokens: 790}},
			wantCode: workerproto.ExitOK,
		},
		{
			name: "resumed chat stays canonical", fixture: "success_tools.jsonl", resumed: "resumed-chat-1",
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: "resumed-chat-1",
				Summary: "Reading the file.Fixed the greeting; the tests still fail.",
				Usage:   workerproto.Usage{DurationMS: 24397, InputTokens: 24102 + 46720 + 12, OutputTokens: 790}},
			wantCode: workerproto.ExitOK,
		},
		{
			name: "partial output with repeats", fixture: "partial_output.jsonl",
			wantLines: []want{
				status("Agent started (model Auto)"),
				message("Beginning the survey now."),
				tool("readToolCall", "Read README.md", "c1"),
				message("Listing files."),
				tool("lsToolCall", "List .", "c2"),
				message("ALPHA"),
				message("Found 11 files.\n\nThe survey is complete."),
			},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: cursorChat,
				Summary: "Beginning the survey now.Listing files.ALPHAFound 11 files.\n\nThe survey is complete.",
				Usage:   workerproto.Usage{DurationMS: 24397, InputTokens: 100, OutputTokens: 20}},
			wantCode: workerproto.ExitOK,
		},
		{
			name: "no result, exit 0", fixture: "no_result.jsonl", wantLines: noResultLines,
			wantRes:  workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: cursorChat, Summary: noResultProse},
			wantCode: workerproto.ExitOK,
		},
		{
			name: "no result, not logged in", fixture: "no_result.jsonl", wantLines: noResultLines,
			exit:    processExit{Code: 1, StderrTail: "Error: Authentication required. Please run 'agent login' first, or set CURSOR_API_KEY environment variable."},
			wantRes: failed(cursorAuthHint), wantCode: workerproto.ExitAgentFailed, wantClass: ClassAuth,
		},
		{
			name: "no result, untrusted workspace", fixture: "no_result.jsonl", wantLines: noResultLines,
			exit:    processExit{Code: 1, StderrTail: "Workspace Trust Required\nPass --trust, --yolo, or -f"},
			wantRes: failed(cursorTrustHint), wantCode: workerproto.ExitAgentFailed, wantClass: ClassWorkspaceTrust,
		},
		{
			name: "no result, resumed chat missing", fixture: "no_result.jsonl", resumed: "chat-42", wantLines: noResultLines,
			exit: processExit{Code: 1, StderrTail: `Error: Session "chat-42" does not exist`},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: "chat-42", Summary: noResultProse,
				Error: "the chat to resume was not found"},
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassSessionNotFound,
		},
		{
			name: "no result, not found without the resumed id", fixture: "no_result.jsonl", resumed: "chat-42", wantLines: noResultLines,
			exit: processExit{Code: 1, StderrTail: "Error: model gpt-9 not found"},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: "chat-42", Summary: noResultProse,
				Error: "cursor-agent exited with status 1: Error: model gpt-9 not found"},
			wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
		},
		{
			name: "no result, chat not found on a new chat", fixture: "no_result.jsonl", wantLines: noResultLines,
			exit:    processExit{Code: 1, StderrTail: "Error: Chat not found: x"},
			wantRes: failed("cursor-agent exited with status 1: Error: Chat not found: x"), wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
		},
		{
			name: "no result, crash", fixture: "no_result.jsonl", wantLines: noResultLines,
			exit:    processExit{Code: 1, StderrTail: "TypeError: boom\nNode.js v22.19.0"},
			wantRes: failed("cursor-agent exited with status 1: TypeError: boom\nNode.js v22.19.0"), wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
		},
		{
			name: "no result, killed", fixture: "no_result.jsonl", wantLines: noResultLines,
			exit:    processExit{Code: -1},
			wantRes: failed("cursor-agent was killed by a signal without output on stderr"), wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
		},
		{
			name: "error result", fixture: "error_result.jsonl", exit: processExit{Code: 1},
			wantLines: []want{status("Agent started (model Auto)"), message("Let me run the tests first.")},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: cursorChat, Summary: "Let me run the tests first.",
				Error: "The agent could not complete the task: make test failed",
				Usage: workerproto.Usage{DurationMS: 300, InputTokens: 10, OutputTokens: 2}},
			wantCode: workerproto.ExitAgentFailed, wantClass: ClassAgentError,
		},
		{
			name: "unknown events", fixture: "unknown_events.jsonl",
			wantLines: []want{
				status("Agent started (model GPT-5)"),
				message("a plain string content"),
				tool("semanticSearchToolCall", "semanticSearchToolCall", "c1"),
				tool("shellToolCall", "Run: ls", ""),
				tool("grepToolCall", "Search", ""),
				tool("readToolCall", "Read x.go", "inner-1"),
				errLine("Tool failed: rejected"),
			},
			wantRes:  workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: cursorChat, Summary: "a plain string content"},
			wantCode: workerproto.ExitOK,
		},
		{
			name: "truncated, exit 0", fixture: "truncated.jsonl",
			wantLines: []want{status("Agent started (model Auto)"), message("Updated the changelog.")},
			wantRes:   workerproto.Result{Outcome: workerproto.OutcomeSucceeded, SessionID: cursorChat, Summary: "Updated the changelog."},
			wantCode:  workerproto.ExitOK,
		},
		{
			name: "truncated, exit 1", fixture: "truncated.jsonl", exit: processExit{Code: 1, StderrTail: "fatal: out of memory"},
			wantLines: []want{status("Agent started (model Auto)"), message("Updated the changelog.")},
			wantRes: workerproto.Result{Outcome: workerproto.OutcomeFailed, SessionID: cursorChat, Summary: "Updated the changelog.",
				Error: "cursor-agent exited with status 1: fatal: out of memory"},
			wantCode: workerproto.ExitCLICrashed, wantClass: ClassCrashed,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := readFixture(t, "cursor", tc.fixture)
			lines, res, code, class := parseCursor(t, raw, tc.resumed, tc.exit)
			if tc.wantLines != nil {
				if got := strip(lines); !reflect.DeepEqual(got, tc.wantLines) {
					t.Errorf("lines:\n got %q\nwant %q", got, tc.wantLines)
				}
			}
			checkParsed(t, lines, res, code, class, tc.wantRes, tc.wantCode, tc.wantClass)
		})
	}
}

// Without --stream-partial-output every assistant line is a whole segment,
// model_call_id or not, and must be shown even when a text repeats.
func TestCursorParserCompleteSegmentsAreNeverDropped(t *testing.T) {
	raw := `{"type":"assistant","message":{"content":[{"type":"text","text":"Checking."}]},"model_call_id":"m1","timestamp_ms":1}
{"type":"tool_call","subtype":"started","call_id":"a","tool_call":{"shellToolCall":{"args":{"command":"ls"}}}}
{"type":"assistant","message":{"content":[{"type":"text","text":"Checking."}]},"model_call_id":"m2","timestamp_ms":2}
{"type":"assistant","message":{"content":[{"type":"text","text":"Done."}]}}
`
	lines, res, _, _ := parseCursor(t, []byte(raw), "", processExit{})
	want := []want{message("Checking."), tool("shellToolCall", "Run: ls", "a"), message("Checking."), message("Done.")}
	if got := strip(lines); !reflect.DeepEqual(got, want) {
		t.Errorf("lines:\n got %q\nwant %q", got, want)
	}
	if res.Summary != "Checking.\n\nChecking.\n\nDone." || res.SessionID != "" {
		t.Errorf("result = %+v; want the joined prose and no chat id", res)
	}
}

// Deltas whose repeat never came are not lost when the next complete segment
// is different.
func TestCursorParserDeltasWithoutRepeat(t *testing.T) {
	raw := `{"type":"assistant","message":{"content":[{"type":"text","text":"Half"}]},"timestamp_ms":1}
{"type":"assistant","message":{"content":[{"type":"text","text":" a thought"}]},"timestamp_ms":2}
{"type":"assistant","message":{"content":[{"type":"text","text":"Something else."}]}}
`
	lines, _, _, _ := parseCursor(t, []byte(raw), "", processExit{})
	want := []want{message("Half a thought"), message("Something else.")}
	if got := strip(lines); !reflect.DeepEqual(got, want) {
		t.Errorf("lines:\n got %q\nwant %q", got, want)
	}
}

func TestCursorParserRejectsOddChatIDs(t *testing.T) {
	for _, id := range []string{"--help", "a b", "x\ny", strings.Repeat("a", 201), "../../etc"} {
		raw := `{"type":"system","subtype":"init","session_id":` + jsonString(id) + `}` + "\n" +
			`{"type":"result","is_error":false,"result":"ok","session_id":` + jsonString(id) + `}` + "\n"
		_, res, _, _ := parseCursor(t, []byte(raw), "", processExit{})
		if res.SessionID != "" {
			t.Errorf("chat id %q was accepted", id)
		}
	}
	raw := `{"type":"result","is_error":false,"result":"ok","session_id":"from-result-1"}` + "\n"
	if _, res, _, _ := parseCursor(t, []byte(raw), "", processExit{}); res.SessionID != "from-result-1" {
		t.Errorf("chat id from the result = %q", res.SessionID)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestCursorErrorResultWithAuthText(t *testing.T) {
	raw := `{"type":"result","is_error":true,"result":"Authentication required"}` + "\n"
	_, res, code, class := parseCursor(t, []byte(raw), "", processExit{Code: 1})
	if class != ClassAuth || code != workerproto.ExitAgentFailed || res.Error != cursorAuthHint {
		t.Errorf("class %q code %d error %q", class, code, res.Error)
	}
	_, res, _, class = parseCursor(t, []byte(`{"type":"result","is_error":true}`+"\n"), "", processExit{Code: 1})
	if class != ClassAgentError || res.Error != "cursor-agent reported an error" {
		t.Errorf("empty error result: class %q error %q", class, res.Error)
	}
}

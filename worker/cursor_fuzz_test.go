package worker

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/event"
)

// FuzzCursorParser feeds arbitrary streams to the cursor parser. Seeds are the
// recorded fixtures (whole and line by line), so `go test` replays them every run.
func FuzzCursorParser(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "cursor", "*.jsonl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, 0, false)
		f.Add(raw, 1, true)
		for _, l := range bytes.Split(raw, []byte("\n")) {
			f.Add(l, 2, false)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, exitCode int, resume bool) {
		resumed := ""
		if resume {
			resumed = "resumed-chat-1"
		}
		lines, res, code, class := parseCursor(t, raw, resumed, processExit{Code: exitCode % 256, StderrTail: string(raw[:min(len(raw), 50)])})
		for _, l := range lines {
			if !validLineType(l.Type) {
				t.Fatalf("bad event type %q", l.Type)
			}
			checkText(t, l.Text, maxText)
			if l.Type == event.TypeTool {
				if l.Data["name"] == "" || l.Data["summary"] != l.Text {
					t.Fatalf("tool event without name/summary: %+v", l)
				}
			}
		}
		checkText(t, res.Summary, maxSummary)
		if resume && res.SessionID != resumed {
			t.Fatalf("session id %q is not the resumed chat", res.SessionID)
		}
		if res.SessionID != "" && !plausibleChatID(res.SessionID) {
			t.Fatalf("implausible chat id %q", res.SessionID)
		}
		switch res.Outcome {
		case event.OutcomeSucceeded:
			if code != event.ExitOK || class != "" || res.Error != "" {
				t.Fatalf("success with code %d class %q error %q", code, class, res.Error)
			}
		case event.OutcomeFailed:
			if res.Error == "" || class == "" || (code != event.ExitAgentFailed && code != event.ExitCLICrashed) {
				t.Fatalf("failure with code %d class %q error %q", code, class, res.Error)
			}
		default:
			t.Fatalf("outcome %q", res.Outcome)
		}
	})
}

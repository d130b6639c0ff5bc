package worker

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/trakkar/trakkar-agent/internal/event"
)

// FuzzClaudeParser feeds arbitrary streams to the parser. Seeds are the recorded
// fixtures (whole and line by line), so `go test` replays them every run.
func FuzzClaudeParser(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "claude", "*.jsonl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, 0)
		f.Add(raw, 1)
		for _, l := range bytes.Split(raw, []byte("\n")) {
			f.Add(l, 2)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, exitCode int) {
		lines, res, code, class := parseStream(t, raw, processExit{Code: exitCode % 256, StderrTail: string(raw[:min(len(raw), 50)])})
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
		if res.SessionID != "11111111-2222-4333-8444-555555555555" {
			t.Fatalf("session id %q is not the canonical one", res.SessionID)
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

func validLineType(t string) bool {
	switch t {
	case event.TypeStatus, event.TypeMessage, event.TypeTool, event.TypeLog, event.TypeError:
		return true
	}
	return false
}

func checkText(t *testing.T, s string, limit int) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8 in %q", s)
	}
	if n := utf8.RuneCountInString(s); n > limit {
		t.Fatalf("text of %d runes exceeds %d", n, limit)
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			t.Fatalf("control character %U in %q", r, s)
		}
	}
}

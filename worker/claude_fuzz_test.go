package worker

import (
	"bytes"
	"testing"
)

// FuzzClaudeParser feeds arbitrary streams to the parser. Seeds are the recorded
// fixtures (whole and line by line), so `go test` replays them every run.
func FuzzClaudeParser(f *testing.F) {
	for _, raw := range fixtures(f, "claude") {
		f.Add(raw, 0)
		f.Add(raw, 1)
		for _, l := range bytes.Split(raw, []byte("\n")) {
			f.Add(l, 2)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, exitCode int) {
		lines, res, code, class := parseStream(t, raw, fuzzExit(raw, exitCode))
		checkParsedAnything(t, lines, res, code, class)
		if res.SessionID != "11111111-2222-4333-8444-555555555555" {
			t.Fatalf("session id %q is not the canonical one", res.SessionID)
		}
	})
}

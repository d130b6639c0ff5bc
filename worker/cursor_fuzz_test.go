package worker

import (
	"bytes"
	"testing"
)

// FuzzCursorParser feeds arbitrary streams to the cursor parser. Seeds are the
// recorded fixtures (whole and line by line), so `go test` replays them every run.
func FuzzCursorParser(f *testing.F) {
	for _, raw := range fixtures(f, "cursor") {
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
		lines, res, code, class := parseCursor(t, raw, resumed, fuzzExit(raw, exitCode))
		checkParsedAnything(t, lines, res, code, class)
		if resume && res.SessionID != resumed {
			t.Fatalf("session id %q is not the resumed chat", res.SessionID)
		}
		if res.SessionID != "" && !plausibleChatID(res.SessionID) {
			t.Fatalf("implausible chat id %q", res.SessionID)
		}
	})
}

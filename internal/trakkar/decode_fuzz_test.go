package trakkar

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds arbitrary bodies to every response decoder. With `go test`
// only the seeds run; `go test -fuzz FuzzDecode` explores further.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"runs": []}`,
		`{"runs": [{"id": "run_1", "task_id": "t", "kind": "start", "message_id": null, "status": "queued", "attempt": 2, "created_at": "2025-01-02T03:04:05Z"}]}`,
		`{"runs": [{"id": ""}]}`,
		`{"runs": null}`,
		`{"runs": "x"}`,
		`{"agent": {"id": "agt", "max_concurrency": null, "verify_command": "npm test"}}`,
		`{"agent": {"id": "agt", "max_concurrency": 1e400}}`,
		`{"run": {"id": "r"}, "task": {"id": "t", "messages": [{"id": "m", "author": {"name": "A", "kind": "user"}}]}, "lease_seconds": -5}`,
		`{"stop_requested": true, "lease_seconds": 0}`,
		`{"acked_seq": 9223372036854775807}`,
		`{"acked_seq": -1}`,
		`{"acked_seq": 1.5}`,
		`{"error": {"code": "lease_lost", "message": "line1\nline2\u0000"}}`,
		`{"error": "flat"}`,
		"\xff\xfe{",
		`{"runs": [` + strings.Repeat(`{"id":"r"},`, 50) + `{"id":"r"}]}`,
		``,
		`null`,
		`   {"runs": []}   `,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if runs, err := decodeRuns(body); err == nil {
			if runs == nil {
				t.Fatal("nil runs without an error")
			}
			for _, r := range runs {
				if r.ID == "" {
					t.Fatal("run without id accepted")
				}
			}
		}
		if a, err := decodeAgent(body); err == nil && a.ID == "" {
			t.Fatal("agent without id accepted")
		}
		if c, err := decodeClaim(body); err == nil && (c.Run.ID == "" || c.Task.ID == "" || c.LeaseSeconds <= 0) {
			t.Fatalf("incomplete claim accepted: %+v", c)
		}
		if hb, err := decodeHeartbeat(body); err == nil && hb.LeaseSeconds <= 0 {
			t.Fatalf("heartbeat with lease %d accepted", hb.LeaseSeconds)
		}
		if acked, err := decodeAcked(body); err == nil && acked < 0 {
			t.Fatalf("negative ack %d accepted", acked)
		}
		if r, err := decodeRun(body); err == nil && r.ID == "" {
			t.Fatal("run without id accepted")
		}
		for _, status := range []int{400, 409, 503, 599} {
			ae := decodeAPIError(status, body, testToken)
			msg := ae.Error()
			if ae.Message == "" || strings.ContainsAny(msg, "\n\r\x00") || !utf8.ValidString(msg) {
				t.Fatalf("bad error text %q", msg)
			}
			if utf8.RuneCountInString(ae.Message) > maxErrorMessage+1 {
				t.Fatalf("error message of %d runes", utf8.RuneCountInString(ae.Message))
			}
		}
	})
}

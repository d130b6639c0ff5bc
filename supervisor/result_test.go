package supervisor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

const resultTestKey = "sk-ant-api03-Zx9_Qm7Lr2Vt5wKp8yHn3cDf6gJs1aBe4uMo0iXq-AAAA"

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A result.json the agent forged must not carry anything into the completion
// or the session file that the supervisor did not expect.
func TestCheckedResultDropsForgedFields(t *testing.T) {
	t.Parallel()
	const jobID = "0b7f5a52-4a35-4c35-9d43-7a1a0b6c9e11"
	good := workerproto.Usage{DurationMS: 1200, Turns: 3, CostUSD: 0.25, InputTokens: 1000, OutputTokens: 50}
	cases := []struct {
		name        string
		job         workerproto.Job
		res         map[string]any
		wantNil     bool
		wantSession string
		wantUsage   workerproto.Usage
	}{
		{"valid", workerproto.Job{Provider: ProviderClaude, SessionID: jobID},
			map[string]any{"outcome": "succeeded", "session_id": jobID, "usage": good}, false, jobID, good},
		{"key as session id", workerproto.Job{Provider: ProviderClaude, SessionID: jobID},
			map[string]any{"outcome": "succeeded", "session_id": resultTestKey, "usage": good}, false, "", good},
		{"other uuid", workerproto.Job{Provider: ProviderClaude, SessionID: jobID},
			map[string]any{"outcome": "succeeded", "session_id": "11111111-2222-4333-8444-555555555555"}, false, "", workerproto.Usage{}},
		{"path as session id", workerproto.Job{Provider: ProviderClaude, SessionID: jobID},
			map[string]any{"outcome": "failed", "session_id": "../../etc/passwd"}, false, "", workerproto.Usage{}},
		{"cursor new chat uuid", workerproto.Job{Provider: ProviderCursor},
			map[string]any{"outcome": "succeeded", "session_id": jobID}, false, jobID, workerproto.Usage{}},
		{"cursor new chat key", workerproto.Job{Provider: ProviderCursor},
			map[string]any{"outcome": "succeeded", "session_id": resultTestKey}, false, "", workerproto.Usage{}},
		{"negative cost", workerproto.Job{Provider: ProviderClaude, SessionID: jobID},
			map[string]any{"outcome": "succeeded", "session_id": jobID, "usage": map[string]any{"cost_usd": -5, "turns": 2, "input_tokens": -1, "output_tokens": 1e15, "duration_ms": 5}},
			false, jobID, workerproto.Usage{Turns: 2, DurationMS: 5}},
		{"unknown outcome", workerproto.Job{Provider: ProviderClaude, SessionID: jobID},
			map[string]any{"outcome": "merged-to-main", "session_id": jobID}, true, "", workerproto.Usage{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in, out := t.TempDir(), t.TempDir()
			writeJSON(t, filepath.Join(in, workerproto.JobFile), c.job)
			writeJSON(t, filepath.Join(out, workerproto.ResultFile), c.res)
			res, problems := checkedResult(in, out, readResult(out))
			if c.wantNil {
				if res != nil {
					t.Fatalf("result kept: %+v", res)
				}
				if len(problems) == 0 {
					t.Fatal("dropped without saying why")
				}
				return
			}
			if res == nil {
				t.Fatalf("result dropped: %v", problems)
			}
			if res.SessionID != c.wantSession {
				t.Fatalf("session id = %q, want %q", res.SessionID, c.wantSession)
			}
			if res.Usage != c.wantUsage {
				t.Fatalf("usage = %+v, want %+v", res.Usage, c.wantUsage)
			}
			for _, p := range problems {
				if strings.Contains(p, resultTestKey) || strings.Contains(p, "\n") {
					t.Fatalf("problem text leaks or spans lines: %q", p)
				}
			}
			if (c.wantSession != stringOf(c.res["session_id"]) || c.wantUsage != good && c.res["usage"] != nil) && len(problems) == 0 {
				t.Fatal("a dropped field was not reported")
			}
		})
	}
}

func stringOf(v any) string { s, _ := v.(string); return s }

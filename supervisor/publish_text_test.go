package supervisor

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

func TestCommitMessageDropsInjectedTrailers(t *testing.T) {
	t.Parallel()
	c := trakkar.Claim{Task: trakkar.Task{Key: "WEB-1", Title: "Fix", URL: "https://t/WEB-1"}, Run: trakkar.Run{ID: "run_1"}}
	summary := "Fixed it.\nNote: the cache is cold.\n\nCo-authored-by: Mallory <m@evil.example>\n" +
		"  signed-off-by: Mallory <m@evil.example>\nReviewed-By: x\nTrakkar-Run: run_forged\nChange-Id: I123\n"
	for name, text := range map[string]string{"commit": commitMessage(c, summary), "pr body": prBody(c, summary)} {
		low := strings.ToLower(text)
		for _, bad := range []string{"co-authored-by", "signed-off-by", "reviewed-by", "run_forged", "change-id"} {
			if strings.Contains(low, bad) {
				t.Errorf("%s keeps the injected %q:\n%s", name, bad, text)
			}
		}
		if !strings.Contains(text, "Note: the cache is cold.") || !strings.Contains(text, "Fixed it.") {
			t.Errorf("%s lost the agent's prose:\n%s", name, text)
		}
	}
	if !strings.Contains(commitMessage(c, summary), "Trakkar-Run: run_1\n") {
		t.Error("the runner's own trailer is gone")
	}
}

// The summary is the agent's text: it is masked and its terminal sequences are
// stripped before it reaches the commit, the PR or the completion, and masked
// before it is cut.
func TestPublishTextMasksTheSummary(t *testing.T) {
	t.Parallel()
	s := testSupervisor(Config{})
	s.redact = redact.New(resultTestKey)
	summary := "\x1b]0;title\x07Done \x1b[31mred\x1b[0m " + resultTestKey + " hex " + hex.EncodeToString([]byte(resultTestKey)) +
		" " + strings.Repeat("x", 20000-40) + resultTestKey
	got := s.publishText(summary)
	if strings.Contains(got, "\x1b") || strings.Contains(got, "\x07") {
		t.Fatalf("terminal sequences kept: %q", got[:60])
	}
	c := trakkar.Claim{Task: trakkar.Task{Key: "WEB-1", Title: "Fix " + resultTestKey}, Run: trakkar.Run{ID: "run_1"}}
	for name, text := range map[string]string{"summary": got, "commit": s.redact.String(commitMessage(c, got)),
		"pr body": s.redact.String(prBody(c, got)), "pr title": s.redact.String(prTitle(c.Task))} {
		if strings.Contains(text, resultTestKey[:20]) || strings.Contains(text, hex.EncodeToString([]byte(resultTestKey))[:40]) {
			t.Fatalf("%s leaks the key", name)
		}
	}
}

// The verify output's tail goes into the PR body and the completion error; a
// line is cut to tailChars, which must not cut a secret short of masking.
func TestVerifyTailMasksBeforeCutting(t *testing.T) {
	t.Parallel()
	tail := &tailBuffer{mask: redact.New(resultTestKey).String}
	for _, pad := range []int{tailChars - 10, tailChars - 30, tailChars - len(resultTestKey)} {
		tail.add(strings.Repeat("v", pad) + resultTestKey + " end")
	}
	if got := tail.String(); strings.Contains(got, resultTestKey[:10]) {
		t.Fatalf("a cut prefix of the key is in the tail: …%q", got[len(got)-80:])
	}
}

// Verify output lines reach the PR body through the tail: masked, and with no
// terminal sequences.
func TestVerifyLineIsMaskedAndStripped(t *testing.T) {
	t.Parallel()
	s := testSupervisor(Config{})
	s.redact = redact.New(resultTestKey)
	tail := &tailBuffer{mask: s.verifyLine}
	tail.add("\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[2J" + resultTestKey)
	if got := tail.String(); strings.ContainsAny(got, "\x1b\x07") || strings.Contains(got, resultTestKey) {
		t.Fatalf("tail line = %q", got)
	}
}

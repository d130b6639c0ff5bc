package worker

import (
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/redact"
)

const testModelKey = "sk-ant-api03-Zx9_Qm7Lr2Vt5wKp8yHn3cDf6gJs1aBe4uMo0iXq-AAAA"

// The supervisor masks before it truncates to the event limit, so the worker
// must hand over the whole text: a key cut one character short of the 4000th
// would pass the supervisor's masking.
func TestEventTextIsNotCutAtTheEventLimit(t *testing.T) {
	for _, pad := range []int{3990, 3999 - len(testModelKey), 3950} {
		text := strings.Repeat("a", pad) + testModelKey + " end"
		raw := `{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"` + text + `"}]}}` + "\n"
		lines, _, _, _ := parseStream(t, []byte(raw), processExit{})
		if len(lines) != 1 || !strings.Contains(lines[0].Text, testModelKey) {
			t.Fatalf("pad %d: the key did not reach the supervisor whole: %q", pad, lines[0].Text[len(lines[0].Text)-80:])
		}
	}
}

// Short display fields (a tool's one-line summary) are still cut in the worker;
// the model credential the worker knows is masked before the cut, so no prefix
// of it survives.
func TestShortFieldsMaskOwnSecretBeforeCutting(t *testing.T) {
	old := ownSecrets
	ownSecrets = func() *redact.Redactor { return redact.New(testModelKey) }
	t.Cleanup(func() { ownSecrets = old })
	for _, pad := range []int{90, 100, 110, 118} {
		cmd := "curl -H 'x-api-key: " + strings.Repeat("x", pad-20) + testModelKey + "' https://api.example"
		raw := `{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"` + cmd + `"}}]}}` + "\n"
		lines, _, _, _ := parseStream(t, []byte(raw), processExit{})
		if len(lines) != 1 {
			t.Fatalf("got %d lines", len(lines))
		}
		for _, s := range []string{lines[0].Text, lines[0].Data["summary"].(string)} {
			if strings.Contains(s, testModelKey[:16]) {
				t.Fatalf("pad %d: a cut prefix of the key leaked: %q", pad, s)
			}
		}
	}
}

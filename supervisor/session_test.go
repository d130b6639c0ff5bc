package supervisor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
)

// A session id comes from agent-writable places (result.json, session.json in
// the state folder): only a UUID may ever become part of a path.
func TestSessionIDsMustBeUUIDs(t *testing.T) {
	valid := uuid.NewString()
	for _, tc := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"canonical uuid", valid, true},
		{"upper-case uuid", "8D45AFE0-0000-4000-8000-000000000001", true},
		{"parent traversal", "../../../../outside", false},
		{"traversal with uuid tail", "../../" + valid, false},
		{"absolute path", "/etc/passwd", false},
		{"slash inside", valid[:8] + "/" + valid[9:], false},
		{"urn form", "urn:uuid:" + valid, false},
		{"braced form", "{" + valid + "}", false},
		{"no dashes", "8d45afe0000040008000000000000001", false},
		{"empty", "", false},
		{"title", "my session", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validSessionID(tc.id); got != tc.ok {
				t.Errorf("validSessionID(%q) = %v, want %v", tc.id, got, tc.ok)
			}
		})
	}
}

func sessionWorkspace(t *testing.T) *workspace {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	ws := &workspace{stateDir: state, agentDir: filepath.Join(state, "agent")}
	if err := os.MkdirAll(filepath.Join(ws.agentDir, "claude", "projects", claudeSlug("/workspace")), 0o755); err != nil {
		t.Fatal(err)
	}
	return ws
}

// A forged id never makes the host look for a file outside the state folder:
// here the file the traversal names exists, so only the id check refuses it.
func TestForgedSessionIDIsNoSession(t *testing.T) {
	ws := sessionWorkspace(t)
	forged := "../../../../outside"
	// agent/claude/projects/<slug>/../../../../outside.jsonl is <state>/outside.jsonl.
	if err := os.WriteFile(filepath.Join(ws.stateDir, "outside.jsonl"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sessionUsable(ws, &session{Provider: ProviderClaude, ID: forged}, ProviderClaude) {
		t.Error("a forged session id was usable")
	}
	if sessionUsable(ws, &session{Provider: ProviderCursor, ID: forged}, ProviderCursor) {
		t.Error("a forged cursor session id was usable")
	}
	if err := saveSession(ws, session{Provider: ProviderClaude, ID: forged}); err == nil {
		t.Error("saveSession kept a forged session id")
	}
	// A session.json forged on disk is no session either.
	if err := os.WriteFile(filepath.Join(ws.stateDir, sessionFile),
		[]byte(`{"provider":"claude_code","session_id":"`+forged+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := loadSession(ws); s != nil {
		t.Errorf("loadSession returned a forged session %+v", s)
	}

	// A real UUID still round-trips and resumes.
	id := uuid.NewString()
	if err := saveSession(ws, session{Provider: ProviderClaude, ID: id}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws.agentDir, "claude", "projects", claudeSlug("/workspace"), id+".jsonl"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := loadSession(ws)
	if s == nil || s.ID != id || !sessionUsable(ws, s, ProviderClaude) {
		t.Fatalf("a valid session was lost: %+v", s)
	}
}

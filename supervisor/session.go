package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// session is the agent conversation the runner keeps per task, so a follow-up
// continues it instead of starting over.
type session struct {
	Provider  string    `json:"provider"`
	ID        string    `json:"session_id"`
	UpdatedAt time.Time `json:"updated_at"`
}

const sessionFile = "session.json"

func loadSession(ws *workspace) *session {
	b, err := os.ReadFile(filepath.Join(ws.stateDir, sessionFile))
	if err != nil {
		return nil
	}
	var s session
	if json.Unmarshal(b, &s) != nil || !validSessionID(s.ID) {
		return nil
	}
	return &s
}

func saveSession(ws *workspace, s session) error {
	if !validSessionID(s.ID) {
		// The id is not quoted: a forged one may carry a secret.
		return errors.New("the agent's session id is not a UUID; not kept")
	}
	s.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	return writeFileAtomic(filepath.Join(ws.stateDir, sessionFile), b)
}

// writeFileAtomic replaces path with data so a crash never leaves half a file.
func writeFileAtomic(path string, data []byte) error { return replaceFile(path, data, true) }

// replaceFile replaces path with data through a rename; with durable, the
// data reaches the disk before the rename. Without it, a crash may leave the
// old file, an empty one or one the filesystem had not filled yet, so it is
// only for what is rewritten often and only shown (the latest event, which
// the status command then leaves out), not the records a restart resumes from.
func replaceFile(path string, data []byte, durable bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", filepath.Base(path), err)
	}
	return nil
}

// sessionUsable reports whether the stored conversation can be resumed here:
// same provider, and (for claude, whose storage is documented) its transcript
// still on disk under the slug of /workspace.
func sessionUsable(ws *workspace, s *session, provider string) bool {
	if s == nil || s.Provider != provider || !validSessionID(s.ID) {
		return false
	}
	if provider != ProviderClaude {
		return true
	}
	p := filepath.Join(ws.agentDir, "claude", "projects", claudeSlug(workerproto.Workspace), s.ID+".jsonl")
	_, err := os.Stat(p)
	return err == nil
}

// claudeSlug is Claude Code's project folder name for a working directory:
// every character outside [A-Za-z0-9] becomes '-'.
func claudeSlug(cwd string) string {
	var b strings.Builder
	for _, r := range cwd {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// validSessionID reports whether id is a UUID in its 36-character text form.
// Session ids come from agent-writable files (result.json, session.json), so
// nothing else may ever become part of a path or a resume argument.
func validSessionID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

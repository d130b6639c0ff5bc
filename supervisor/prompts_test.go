package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// The first agent of a run resumes only a follow-up; a fix round always tries
// to; both start fresh, with the whole task, when the conversation is gone.
func TestJobResumesOnlyAUsableConversation(t *testing.T) {
	const id = "0b6f2a53-6a4e-4a4e-9d0e-2f7c1c9e4b11"
	msg := "msg_1"
	cases := []struct {
		name       string
		kind       string
		fix        bool
		transcript bool // the conversation is still on disk
		wantResume bool
		wantPrompt []string
	}{
		{"first run, conversation kept", trakkar.KindStart, false, true, false, []string{"Task K-1: Title"}},
		{"follow-up, conversation kept", trakkar.KindFollowUp, false, true, true, []string{"The person replied in the task chat (Ann):\nplease also"}},
		{"follow-up, conversation gone", trakkar.KindFollowUp, false, false, false, []string{"Task K-1: Title", "Continue the work and address this latest message:\nplease also"}},
		{"fix, conversation kept", trakkar.KindStart, true, true, true, []string{"FIX IT"}},
		{"fix, conversation gone", trakkar.KindStart, true, false, false, []string{"Task K-1: Title", "Your earlier changes are in the working tree.\n\nFIX IT"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ws := &workspace{stateDir: dir, agentDir: filepath.Join(dir, "agent")}
			if err := saveSession(ws, session{Provider: ProviderClaude, ID: id}); err != nil {
				t.Fatal(err)
			}
			if c.transcript {
				p := filepath.Join(ws.agentDir, "claude", "projects", claudeSlug(workerproto.Workspace), id+".jsonl")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := &Supervisor{cfg: Config{Provider: ProviderClaude}}
			r := &run{claim: trakkar.Claim{
				Run: trakkar.Run{Kind: c.kind, MessageID: &msg},
				Task: trakkar.Task{Key: "K-1", Title: "Title", Messages: []trakkar.Message{
					{ID: msg, Body: "please also", Author: trakkar.Author{Name: "Ann", Kind: "user"}}}},
			}}
			var job workerproto.Job
			var resumed bool
			if c.fix {
				job, resumed = s.fixJob(r, ws, "FIX IT")
			} else {
				job, resumed = s.taskJob(r, ws)
			}
			if resumed != c.wantResume || job.Resume != c.wantResume {
				t.Fatalf("resumed %v (job %v), want %v", resumed, job.Resume, c.wantResume)
			}
			if c.wantResume && job.SessionID != id {
				t.Fatalf("resumes session %q, want %q", job.SessionID, id)
			}
			if !c.wantResume && (job.SessionID == id || !validSessionID(job.SessionID)) {
				t.Fatalf("fresh job has session %q, want a new UUID", job.SessionID)
			}
			for _, w := range c.wantPrompt {
				if !strings.Contains(job.Prompt, w) {
					t.Fatalf("prompt lacks %q:\n%s", w, job.Prompt)
				}
			}
		})
	}
}

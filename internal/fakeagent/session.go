package fakeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// Slug is the transcript directory name the CLI derives from the working
// directory: every character outside [A-Za-z0-9] becomes '-', no squeezing; a
// slug over 200 characters is cut and suffixed with a hash (docs/agent-clis.md §1.8).
func Slug(dir string) string {
	var b strings.Builder
	for _, r := range dir {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 200 {
		h := fnv.New32a()
		h.Write([]byte(dir))
		s = fmt.Sprintf("%s-%x", s[:200], h.Sum32())
	}
	return s
}

// ConfigDir is where the CLI keeps credentials and transcripts: $CLAUDE_CONFIG_DIR,
// else $HOME/.claude.
func ConfigDir(environ []string) (string, error) {
	e := Env{Environ: environ}
	if d := e.getenv("CLAUDE_CONFIG_DIR"); d != "" {
		return d, nil
	}
	home := e.getenv("HOME")
	if home == "" {
		return "", errors.New("HOME is not set")
	}
	return filepath.Join(home, ".claude"), nil
}

// TranscriptPath is where a session's transcript lives for a working directory.
func TranscriptPath(configDir, cwd, sessionID string) string {
	return filepath.Join(configDir, "projects", Slug(cwd), sessionID+".jsonl")
}

type store struct {
	configDir string
	cwd       string
}

func openStore(env Env) (store, error) {
	dir, err := ConfigDir(env.Environ)
	if err != nil {
		return store{}, err
	}
	return store{configDir: dir, cwd: env.Dir}, nil
}

func (s store) path(id string) string { return TranscriptPath(s.configDir, s.cwd, id) }

func (s store) loggedIn(env Env) bool {
	for _, k := range []string{"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"} {
		if env.getenv(k) != "" {
			return true
		}
	}
	_, err := os.Stat(filepath.Join(s.configDir, ".credentials.json"))
	return err == nil
}

// session is the conversation a run writes to.
type session struct {
	ID       string
	Path     string // transcript; "" with --no-session-persistence
	Resumed  bool
	Prior    int    // transcript entries before this run
	copyFrom string // --fork-session: history to copy into the new transcript
}

// notFoundError is "--resume X" with no transcript for X in this directory.
type notFoundError struct{ id string }

func (e notFoundError) Error() string { return "No conversation found with session ID: " + e.id }

func (s store) resolve(o options) (session, error) {
	var sess session
	switch {
	case o.resume != "":
		old := s.path(o.resume)
		if strings.ContainsAny(o.resume, `/\`) || !exists(old) {
			return sess, notFoundError{o.resume}
		}
		sess.Resumed, sess.Prior = true, countLines(old)
		if o.fork {
			sess.ID, sess.copyFrom = o.sessionID, old
		} else {
			sess.ID = o.resume
		}
	case o.cont:
		latest := s.latest()
		if latest == "" {
			return sess, usageError{"No conversation found to continue"}
		}
		sess.Resumed, sess.Prior = true, countLines(latest)
		id := strings.TrimSuffix(filepath.Base(latest), ".jsonl")
		if o.fork {
			sess.ID, sess.copyFrom = o.sessionID, latest
		} else {
			sess.ID = id
		}
	default:
		sess.ID = o.sessionID
		if sess.ID != "" && exists(s.path(sess.ID)) {
			return sess, usageError{fmt.Sprintf("Error: Session ID %s is already in use.", sess.ID)}
		}
	}
	if sess.ID == "" {
		sess.ID = uuid.NewString()
	}
	if sess.copyFrom != "" && exists(s.path(sess.ID)) {
		return sess, usageError{fmt.Sprintf("Error: Session ID %s is already in use.", sess.ID)}
	}
	if !o.noPersist {
		sess.Path = s.path(sess.ID)
	}
	return sess, nil
}

// latest is the most recently modified transcript in this directory's slug dir.
func (s store) latest() string {
	dir := filepath.Dir(s.path("x"))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	best, bestTime := "", int64(0)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().UnixNano() >= bestTime {
			best, bestTime = filepath.Join(dir, e.Name()), fi.ModTime().UnixNano()
		}
	}
	return best
}

// transcript appends entries to a session's JSONL file, creating it on the
// first write (a run that never reaches the model leaves nothing behind).
type transcript struct {
	sess session
	f    *os.File
	err  error
}

func (t *transcript) append(entry map[string]any) {
	if t.sess.Path == "" || t.err != nil {
		return
	}
	if t.f == nil {
		if t.err = os.MkdirAll(filepath.Dir(t.sess.Path), 0o700); t.err != nil {
			return
		}
		t.f, t.err = os.OpenFile(t.sess.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if t.err != nil {
			return
		}
		if t.sess.copyFrom != "" {
			t.err = copyInto(t.f, t.sess.copyFrom)
		}
	}
	b, _ := json.Marshal(entry)
	if _, err := t.f.Write(append(b, '\n')); err != nil && t.err == nil {
		t.err = err
	}
}

func (t *transcript) close() error {
	if t.f != nil {
		if err := t.f.Close(); err != nil && t.err == nil {
			t.err = err
		}
	}
	return t.err
}

func copyInto(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

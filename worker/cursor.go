package worker

import (
	"errors"
	"strings"
	"time"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// cursorAgent runs Cursor's cursor-agent headless (docs/agent-clis.md §2).
type cursorAgent struct{}

func init() { registerProvider("cursor", cursorAgent{}) }

func (cursorAgent) Binary() string { return "cursor-agent" }

func (cursorAgent) Validate(job workerproto.Job) error {
	if strings.TrimSpace(job.Prompt) == "" {
		return errors.New("job has an empty prompt")
	}
	// cursor-agent picks the id of a new chat itself; only a resume names one.
	if job.Resume && job.SessionID == "" {
		return errors.New("job resumes a chat but has no session_id")
	}
	if !job.Resume && job.SessionID != "" {
		return errors.New("job has a session_id but does not resume: cursor-agent chooses the id of a new chat")
	}
	if strings.HasPrefix(job.SessionID, "-") || strings.HasPrefix(job.Model, "-") {
		return errors.New("job session_id and model must not start with '-'")
	}
	if job.Resume && !plausibleChatID(job.SessionID) {
		return errors.New("job session_id is not a chat id")
	}
	return nil
}

// Args puts the prompt last, after "--": cursor-agent takes it as a variadic
// positional (no reliable stdin path, §2.2), and "--" keeps a prompt that starts
// with '-' from being read as a flag. --force runs tools without approval and
// --trust skips the workspace-trust check that fails headless runs.
func (cursorAgent) Args(job workerproto.Job) []string {
	args := []string{"-p", "--output-format", "stream-json", "--force", "--trust"}
	if job.Model != "" {
		args = append(args, "--model", job.Model)
	}
	if job.Resume {
		args = append(args, "--resume", job.SessionID)
	}
	args = append(args, job.ExtraArgs...)
	return append(args, "--", job.Prompt)
}

func (cursorAgent) Stdin(workerproto.Job) string { return "" }

// cursorEnvAllow is everything cursor-agent may inherit from the worker: no
// TRAKKAR_* and no other tool's credentials.
var cursorEnvAllow = map[string]bool{
	"PATH": true, "HOME": true, "LANG": true, "LC_ALL": true, "TZ": true,
	"CURSOR_API_KEY": true,
	"HTTPS_PROXY":    true, "HTTP_PROXY": true, "NO_PROXY": true,
	"https_proxy": true, "http_proxy": true, "no_proxy": true,
	"GIT_DIR": true, "GIT_WORK_TREE": true, // the task's disposable repository
}

func (cursorAgent) Env(workerEnv []string) []string {
	env := envFilter(workerEnv, cursorEnvAllow)
	if _, ok := envValue(env, "PATH"); !ok {
		env = append(env, "PATH="+defaultPath)
	}
	// A login flow must print its URL, never try to open a browser.
	return append(env, "NO_OPEN_BROWSER=1")
}

func (cursorAgent) NewParser(job workerproto.Job, workspace string, now func() time.Time) streamParser {
	resumed := ""
	if job.Resume {
		resumed = job.SessionID
	}
	return newCursorParser(resumed, workspace, now)
}

// plausibleChatID accepts what can safely be passed back as `--resume <id>`:
// chat ids are UUIDs, so anything with spaces, controls or odd punctuation is
// rejected, whether it comes from a job or from the CLI's own stream.
func plausibleChatID(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-', r == '_', r == '.', r == ':':
		default:
			return false
		}
	}
	return true
}

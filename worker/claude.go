package worker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// claudeCode runs Claude Code headless (docs/agent-clis.md §1).
type claudeCode struct{}

func init() { registerProvider("claude_code", claudeCode{}) }

func (claudeCode) Binary() string { return "claude" }

func (claudeCode) Validate(job workerproto.Job) error {
	if strings.TrimSpace(job.Prompt) == "" {
		return errors.New("job has an empty prompt")
	}
	if job.SessionID == "" {
		return errors.New("job has no session_id")
	}
	if strings.HasPrefix(job.SessionID, "-") || strings.HasPrefix(job.Model, "-") {
		return errors.New("job session_id and model must not start with '-'")
	}
	// --session-id only takes a canonical UUID; --resume also accepts titles.
	if !job.Resume && !canonicalUUID(job.SessionID) {
		return fmt.Errorf("job session_id %q is not a UUID", job.SessionID)
	}
	return nil
}

func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && strings.EqualFold(u.String(), s)
}

func (claudeCode) Args(job workerproto.Job) []string {
	args := []string{"-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"}
	if job.Model != "" {
		args = append(args, "--model", job.Model)
	}
	if job.Resume {
		args = append(args, "--resume", job.SessionID)
	} else {
		args = append(args, "--session-id", job.SessionID)
	}
	return append(args, job.ExtraArgs...)
}

// The prompt goes on stdin: it can be long and must never be parsed as a flag.
func (claudeCode) Stdin(job workerproto.Job) string { return job.Prompt }

// claudeEnvAllow is everything the CLI may inherit from the worker. Anything else
// (TRAKKAR_*, CLAUDECODE from a parent session, stray tokens) stays out.
// IS_SANDBOX passes through when the supervisor set it: it is the documented way to
// run as uid 0 inside a user-namespaced container.
var claudeEnvAllow = map[string]bool{
	"PATH": true, "HOME": true, "LANG": true, "LC_ALL": true, "TZ": true,
	"CLAUDE_CONFIG_DIR":       true,
	"CLAUDE_CODE_OAUTH_TOKEN": true, "ANTHROPIC_API_KEY": true,
	"ANTHROPIC_AUTH_TOKEN": true, "ANTHROPIC_BASE_URL": true,
	"HTTPS_PROXY": true, "HTTP_PROXY": true, "NO_PROXY": true,
	"https_proxy": true, "http_proxy": true, "no_proxy": true,
	"IS_SANDBOX": true,
	// The task's disposable repository (never the user's .git), so the agent's
	// git status/diff/log work.
	"GIT_DIR": true, "GIT_WORK_TREE": true,
}

const defaultPath = "/usr/local/bin:/usr/bin:/bin"

func (claudeCode) Env(workerEnv []string) []string {
	env := envFilter(workerEnv, claudeEnvAllow)
	if _, ok := envValue(env, "PATH"); !ok {
		env = append(env, "PATH="+defaultPath)
	}
	return append(env,
		"DISABLE_AUTOUPDATER=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	)
}

func (claudeCode) NewParser(job workerproto.Job, workspace string, now func() time.Time) streamParser {
	return newClaudeParser(job.SessionID, workspace, now)
}

// Package hostgit runs git on the host for the supervisor, hardened against content
// written by the agent (see docs/security.md §1.10 and §5): every invocation uses an
// explicit argv, a scrubbed environment with a supervisor-owned global config and HOME,
// per-call overrides that disable config-named programs (fsmonitor, hooks, credential
// helpers, askpass, filter drivers), cwd in the supervisor's state dir, and — for
// anything touching a task worktree — an explicit --git-dir/--work-tree pair so git
// never discovers a repository from agent-written files.
package hostgit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Sentinel errors callers can test with errors.Is.
var (
	ErrNotARepo = errors.New("not a git repository")
	ErrNoRemote = errors.New("no such remote")
)

// Identity written into the supervisor-owned global config.
const (
	agentName  = "Trakkar Agent"
	agentEmail = "agent@trakkar.invalid"
)

// Options configures New.
type Options struct {
	// StateDir is a supervisor-owned directory; New creates StateDir/home and
	// StateDir/gitconfig in it and every git process runs with it as cwd.
	StateDir string
	Logger   *zap.Logger
	// GitPath is the git binary; default "git" looked up on PATH.
	GitPath string
}

// Git runs hardened host git commands. It is safe for concurrent use.
type Git struct {
	gitPath    string
	stateDir   string
	home       string
	globalConf string
	log        *zap.Logger

	excludeMu sync.Mutex // serialises read-modify-append of info/exclude
	// worktreesMu serialises fetch with what changes the set of worktrees:
	// a worktree being registered has a null HEAD for a moment, which a
	// concurrent fetch's connectivity check reports as a bad object. The
	// long part, the checkout, runs outside it.
	worktreesMu sync.Mutex
	// dirs remembers where the user's checkout keeps its git dirs (a
	// dirKey to an absolute path): every stage of every run asks, and the
	// answer is fixed for the checkout's path, so git is asked once.
	dirs sync.Map
}

// dirKey is one question discover answers for a checkout: its path and the
// rev-parse flag.
type dirKey struct{ path, flag string }

// New prepares the state directory and resolves the git binary.
func New(opts Options) (*Git, error) {
	if opts.StateDir == "" {
		return nil, errors.New("hostgit: state dir is required")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("hostgit: state dir: %w", err)
	}
	gitPath := opts.GitPath
	if gitPath == "" {
		gitPath = "git"
	}
	gitPath, err = exec.LookPath(gitPath)
	if err != nil {
		return nil, fmt.Errorf("hostgit: find git: %w", err)
	}
	if gitPath, err = filepath.Abs(gitPath); err != nil {
		return nil, fmt.Errorf("hostgit: find git: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	g := &Git{
		gitPath:    gitPath,
		stateDir:   stateDir,
		home:       filepath.Join(stateDir, "home"),
		globalConf: filepath.Join(stateDir, "gitconfig"),
		log:        log.Named("hostgit"),
	}
	if err := os.MkdirAll(g.home, 0o700); err != nil {
		return nil, fmt.Errorf("hostgit: create home: %w", err)
	}
	if err := writeFileAtomic(g.globalConf, []byte(globalConfig()), 0o600); err != nil {
		return nil, fmt.Errorf("hostgit: write global config: %w", err)
	}
	return g, nil
}

// globalConfig is the whole supervisor-owned global config: an identity and nothing
// else, so there is no driver, helper or hook an agent-written attribute could select.
func globalConfig() string {
	return "[user]\n\tname = " + agentName + "\n\temail = " + agentEmail + "\n"
}

// hardening is passed on every invocation. Command-line config beats the repository's
// own config, so a trusted-but-dangerous repo setting (husky's relative hooksPath, an
// fsmonitor hook, a credential helper) is neutralised too. diff.external is left out on
// purpose: in git 2.39 an empty value makes porcelain diff try to run "" and fail, and
// this package runs no porcelain diff (it uses diff-index, which never runs drivers).
// protectNTFS/protectHFS make git itself refuse paths that alias .git on those file
// systems (git~1, ".git.", ".g\u200cit"), whatever platform the host runs.
var hardening = []string{
	"-c", "core.fsmonitor=false",
	"-c", "core.hooksPath=/dev/null",
	"-c", "core.attributesFile=/dev/null",
	"-c", "core.protectNTFS=true",
	"-c", "core.protectHFS=true",
	"-c", "core.askPass=",
	"-c", "core.pager=cat",
	"-c", "core.editor=false",
	"-c", "credential.helper=",
	"-c", "submodule.recurse=false",
	"-c", "fetch.recurseSubmodules=false",
	"-c", "push.recurseSubmodules=no",
	"-c", "protocol.ext.allow=never",
	"-c", "commit.gpgSign=false",
	"-c", "push.gpgSign=false",
	"-c", "gc.auto=0",
	"-c", "maintenance.auto=false",
}

// configPair is a command-scope config entry passed through GIT_CONFIG_COUNT/KEY/VALUE
// env vars: keeps secrets off argv and allows keys that contain '='.
type configPair struct{ key, value string }

// call is one git invocation.
type call struct {
	op       string   // short name for errors and logs, e.g. "push"
	args     []string // arguments after the hardening flags
	stdin    io.Reader
	readOnly bool         // sets GIT_OPTIONAL_LOCKS=0
	config   []configPair // via env
	secrets  []string     // redacted from error text
	env      []string     // extra GIT_* variables set by this package (the staging quarantine)
	as       *Owner       // run as this user instead (checkout for the container user)
	dir      string       // cwd instead of the state dir
}

// Owner is a uid:gid that files are made for.
type Owner struct{ UID, GID int }

// gitError is a failed git invocation.
type gitError struct {
	op     string
	code   int // exit code, -1 if the process did not exit normally
	stderr string
	err    error
}

func (e *gitError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("git %s: %v", e.op, e.err)
	}
	return fmt.Sprintf("git %s: %v: %s", e.op, e.err, e.stderr)
}

func (e *gitError) Unwrap() error { return e.err }

// exitCode returns the git exit code carried by err, or -1.
func exitCode(err error) int {
	var ge *gitError
	if errors.As(err, &ge) {
		return ge.code
	}
	return -1
}

// stderrOf returns the (redacted) stderr carried by err.
func stderrOf(err error) string {
	var ge *gitError
	if errors.As(err, &ge) {
		return ge.stderr
	}
	return ""
}

const maxStderr = 16 << 10

// run executes git and returns its stdout.
func (g *Git) run(ctx context.Context, c call) (string, error) {
	argv := make([]string, 0, len(hardening)+len(c.args))
	argv = append(argv, hardening...)
	argv = append(argv, c.args...)
	cmd := exec.CommandContext(ctx, g.gitPath, argv...)
	cmd.Dir = g.stateDir
	if c.dir != "" {
		cmd.Dir = c.dir
	}
	cmd.Env = append(g.env(c.readOnly, c.config), c.env...)
	cmd.Stdin = c.stdin
	var stdout bytes.Buffer
	stderr := &cappedBuffer{max: maxStderr}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	setProcessGroup(cmd)
	if c.as != nil {
		if err := runAs(cmd, *c.as); err != nil {
			return "", &gitError{op: c.op, code: -1, err: err}
		}
	}

	start := time.Now()
	err := cmd.Run()
	log := g.log.With(zap.String("op", c.op), zap.Strings("args", c.args), zap.Duration("took", time.Since(start)))
	if err == nil {
		log.Debug("git ok")
		return stdout.String(), nil
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	msg := redact(err.Error(), c.secrets)
	wrapped := errors.New(msg)
	if ctxErr := ctx.Err(); ctxErr != nil {
		wrapped = fmt.Errorf("%w: %s", ctxErr, msg)
	}
	ge := &gitError{
		op:     c.op,
		code:   code,
		stderr: oneLine(redact(strings.TrimSpace(stderr.String()), c.secrets)),
		err:    wrapped,
	}
	log.Debug("git failed", zap.Int("exit", code), zap.String("stderr", ge.stderr))
	return stdout.String(), ge
}

// env builds the child environment: the process env without any GIT_* variable (a
// parent GIT_DIR, GIT_CONFIG_PARAMETERS, GIT_SSH_COMMAND… must never steer host git),
// with HOME/XDG_CONFIG_HOME/locale replaced and the isolation variables added.
func (g *Git) env(readOnly bool, cfg []configPair) []string {
	parent := os.Environ()
	out := make([]string, 0, len(parent)+12+2*len(cfg))
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GIT_") {
			continue
		}
		switch name {
		case "HOME", "XDG_CONFIG_HOME", "LC_ALL", "LANG", "LANGUAGE":
			continue
		}
		out = append(out, kv)
	}
	out = append(out,
		"HOME="+g.home,
		"XDG_CONFIG_HOME="+filepath.Join(g.home, ".config"),
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+g.globalConf,
		"GIT_ATTR_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
	)
	if readOnly {
		out = append(out, "GIT_OPTIONAL_LOCKS=0")
	}
	if len(cfg) > 0 {
		out = append(out, fmt.Sprintf("GIT_CONFIG_COUNT=%d", len(cfg)))
		for i, p := range cfg {
			out = append(out,
				fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, p.key),
				fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, p.value))
		}
	}
	return out
}

// redact replaces every non-empty secret in s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// oneLine joins git's stderr lines so errors stay on one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	return strings.Join(lines, "; ")
}

// cappedBuffer keeps the first max bytes written and drops the rest, so a chatty or
// hostile git cannot make the supervisor buffer unbounded stderr.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string { return b.buf.String() }

// writeFileAtomic replaces path with data via a temp file in the same directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

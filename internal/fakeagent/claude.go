// Package fakeagent is a stand-in for the agent CLIs in tests. It follows the
// headless behaviour documented in docs/agent-clis.md (§1.11 for claude, §2
// for cursor-agent: flags, errors, stream-json shapes, conversations on disk),
// and its script is chosen by `fake:` directives inside the prompt so end-to-end
// tests can drive it through ordinary task descriptions.
package fakeagent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// options are the parsed claude flags.
type options struct {
	print, verbose, cont, fork, skipPerms, allowSkipPerms bool
	partial, noPersist, replay                            bool
	outputFormat, inputFormat                             string
	resume, sessionID, model, permissionMode              string
	maxTurns                                              int
	prompt                                                string
	hasPrompt                                             bool
}

// Messages the real CLI prints (docs/agent-clis.md §1.2, §1.6, §1.9).
const (
	errNeedsVerbose = "Error: When using --print, --output-format=stream-json requires --verbose"
	errRoot         = "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
	errNoPrompt     = "Error: Input must be provided either through stdin or as a prompt argument when using --print"
	errSessionCombo = "Error: --session-id cannot be used with --continue or --resume."
	notLoggedIn     = "Not logged in · Please run /login"
)

// usageError is a failure reported on stderr with exit 1 before any output.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func parseArgs(args []string) (options, error) {
	o := options{outputFormat: "text", inputFormat: "text"}
	boolFlags := map[string]*bool{
		"-p": &o.print, "--print": &o.print, "--verbose": &o.verbose,
		"-c": &o.cont, "--continue": &o.cont, "--fork-session": &o.fork,
		"--dangerously-skip-permissions":       &o.skipPerms,
		"--allow-dangerously-skip-permissions": &o.allowSkipPerms,
		"--include-partial-messages":           &o.partial,
		"--no-session-persistence":             &o.noPersist,
		"--replay-user-messages":               &o.replay,
	}
	var maxTurns, ignored string
	valueFlags := map[string]*string{
		"--output-format": &o.outputFormat, "--input-format": &o.inputFormat,
		"-r": &o.resume, "--resume": &o.resume, "--session-id": &o.sessionID,
		"--model": &o.model, "--permission-mode": &o.permissionMode, "--max-turns": &maxTurns,
		"--append-system-prompt": &ignored, "--system-prompt": &ignored,
		"--allowedTools": &ignored, "--allowed-tools": &ignored,
		"--disallowedTools": &ignored, "--disallowed-tools": &ignored,
		"--fallback-model": &ignored, "--max-budget-usd": &ignored,
	}
	positional, err := scanFlags(args, flagSpec{bools: boolFlags, values: valueFlags})
	if err != nil {
		return o, err
	}
	if maxTurns != "" {
		if _, err := fmt.Sscanf(maxTurns, "%d", &o.maxTurns); err != nil || o.maxTurns <= 0 {
			return o, usageError{fmt.Sprintf("error: --max-turns must be a positive integer, got %q", maxTurns)}
		}
	}
	if len(positional) > 0 {
		o.prompt, o.hasPrompt = positional[len(positional)-1], true
	}
	return o, o.validate()
}

func (o options) validate() error {
	oneOf := func(flag, v string, allowed ...string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return usageError{fmt.Sprintf("error: option '%s <format>' argument '%s' is invalid. Allowed choices are %s.", flag, v, strings.Join(allowed, ", "))}
	}
	if err := oneOf("--output-format", o.outputFormat, "text", "json", "stream-json"); err != nil {
		return err
	}
	if err := oneOf("--input-format", o.inputFormat, "text", "stream-json"); err != nil {
		return err
	}
	if o.permissionMode != "" {
		if err := oneOf("--permission-mode", o.permissionMode, "acceptEdits", "bypassPermissions", "default", "dontAsk", "plan", "auto"); err != nil {
			return err
		}
	}
	if !o.print {
		return usageError{"fake claude: only --print mode is supported"}
	}
	if o.outputFormat == "stream-json" && !o.verbose {
		return usageError{errNeedsVerbose}
	}
	if o.inputFormat == "stream-json" && o.outputFormat != "stream-json" {
		return usageError{"Error: --input-format=stream-json requires output-format=stream-json."}
	}
	if o.sessionID != "" {
		if (o.resume != "" || o.cont) && !o.fork {
			return usageError{errSessionCombo}
		}
		if u, err := uuid.Parse(o.sessionID); err != nil || !strings.EqualFold(u.String(), o.sessionID) {
			return usageError{"Error: Invalid session ID. Must be a valid UUID."}
		}
	}
	return nil
}

func (o options) bypass() bool {
	return o.skipPerms || o.allowSkipPerms || o.permissionMode == "bypassPermissions"
}

// Claude runs the fake `claude` and returns its exit code.
func Claude(env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	// `claude --version` (or -v) alone prints the version, as the image build checks.
	if len(env.Args) == 1 && (env.Args[0] == "--version" || env.Args[0] == "-v") {
		fmt.Fprintln(env.Stdout, fakeVersion+" (Claude Code)")
		return 0
	}
	o, err := parseArgs(env.Args)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	if env.UID == 0 && o.bypass() && env.getenv("IS_SANDBOX") != "1" && env.getenv("CLAUDE_CODE_BUBBLEWRAP") == "" {
		fmt.Fprintln(env.Stderr, errRoot)
		return 1
	}
	prompt, err := readPrompt(o, env.Stdin)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	d, err := parseDirectives(prompt)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fake claude: "+err.Error())
		return 1
	}
	if d.envFile != "" {
		if err := dumpEnv(d.envFile, env.Environ); err != nil {
			fmt.Fprintln(env.Stderr, "fake claude: "+err.Error())
			return 1
		}
	}
	store, err := openStore(env)
	if err != nil {
		fmt.Fprintln(env.Stderr, "Error: "+err.Error())
		return 1
	}
	sess, err := store.resolve(o)
	var nf notFoundError
	if errors.As(err, &nf) && d.resumeErrorAsResult {
		// Newer builds report a missing session as an error result instead.
		return newRun(env, o, d, session{ID: nf.id}, prompt).notFound(nf)
	}
	if err != nil {
		var ue usageError
		switch {
		case errors.As(err, &nf):
			fmt.Fprintln(env.Stderr, nf.Error())
		case errors.As(err, &ue):
			fmt.Fprintln(env.Stderr, ue.msg)
		default:
			fmt.Fprintln(env.Stderr, "Error: "+err.Error())
		}
		return 1
	}
	if sess.Resumed {
		hist := sess.copyFrom
		if hist == "" {
			hist = store.path(sess.ID)
		}
		d.recall(transcriptPrompts(hist))
	}
	r := newRun(env, o, d, sess, prompt)
	if !store.loggedIn(env) {
		return r.notLoggedIn()
	}
	return r.play()
}

func readPrompt(o options, stdin io.Reader) (string, error) {
	if o.hasPrompt && o.inputFormat != "stream-json" {
		if strings.TrimSpace(o.prompt) == "" {
			return "", errors.New(errNoPrompt)
		}
		return o.prompt, nil
	}
	b, err := io.ReadAll(stdin)
	if err != nil {
		return "", fmt.Errorf("Error: read stdin: %w", err)
	}
	text := string(b)
	if o.inputFormat == "stream-json" {
		if text, err = promptFromStreamJSON(text); err != nil {
			return "", err
		}
	}
	if strings.TrimSpace(text) == "" {
		return "", errors.New(errNoPrompt)
	}
	return text, nil
}

func dumpEnv(path string, environ []string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("env-file %q must be an absolute path", path)
	}
	return os.WriteFile(path, []byte(strings.Join(environ, "\n")+"\n"), 0o600)
}

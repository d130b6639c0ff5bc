package fakeagent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The fake cursor-agent follows docs/agent-clis.md §2: flags, the plain-text
// pre-flight errors on stderr, and the stream-json shapes (including the
// --stream-partial-output deltas and their whole-segment repeats).
//
// Chats are kept as $HOME/.cursor/chats/<chatId>.jsonl, one entry a line. That
// is this fake's own convention: where the real CLI stores chats (SQLite under
// its state dirs) is not established; only "resume by the session_id from the
// stream" is.

// cursorOptions are the parsed cursor-agent flags.
type cursorOptions struct {
	print, partial, force, trust, approveMCPs bool
	outputFormat, model, workspace, apiKey    string
	resume                                    string
	bareResume                                bool
	prompt                                    string
}

// Messages of the real CLI (docs/agent-clis.md §2.1, §2.2); the trust message
// paraphrases the observed one, which names the flags that grant trust.
const (
	cursorAuthError  = "Error: Authentication required. Please run 'agent login' first, or set CURSOR_API_KEY environment variable."
	cursorTrustError = "Workspace Trust Required: this directory has not been trusted. Pass --trust, --yolo, or -f to trust it in headless mode."
	cursorNoPrompt   = "Error: No prompt provided. Pass the prompt as an argument in print mode."
)

// CursorChatPath is where the fake keeps a chat (see above).
func CursorChatPath(home, chatID string) string {
	return filepath.Join(home, ".cursor", "chats", chatID+".jsonl")
}

func parseCursorArgs(args []string) (cursorOptions, error) {
	o := cursorOptions{outputFormat: "text"}
	boolFlags := map[string]*bool{
		"-p": &o.print, "--print": &o.print, "--stream-partial-output": &o.partial,
		"-f": &o.force, "--force": &o.force, "--yolo": &o.force,
		"--trust": &o.trust, "--approve-mcps": &o.approveMCPs,
	}
	valueFlags := map[string]*string{
		"--output-format": &o.outputFormat, "--model": &o.model,
		"--workspace": &o.workspace, "--api-key": &o.apiKey,
	}
	// The chat id of --resume is an optional value: taken from "=" or the
	// next argument unless that is a flag (or the "--" before the prompt).
	resume := func(val string, hasVal bool, rest []string) int {
		switch {
		case hasVal:
			o.resume = val
		case len(rest) > 0 && !strings.HasPrefix(rest[0], "-"):
			o.resume = rest[0]
			return 1
		default:
			o.bareResume = true
		}
		return 0
	}
	positional, err := scanFlags(args, flagSpec{bools: boolFlags, values: valueFlags,
		optional: map[string]func(string, bool, []string) int{"--resume": resume}})
	if err != nil {
		return o, err
	}
	o.prompt = strings.Join(positional, " ")
	return o, o.validate()
}

func (o cursorOptions) validate() error {
	switch o.outputFormat {
	case "text", "json", "stream-json":
	default:
		return usageError{fmt.Sprintf("error: option '--output-format <format>' argument '%s' is invalid. Allowed choices are text, json, stream-json.", o.outputFormat)}
	}
	if o.partial && o.outputFormat != "stream-json" {
		return usageError{"Error: --stream-partial-output can only be used with --output-format stream-json"}
	}
	if !o.print {
		return usageError{"fake cursor-agent: only --print mode is supported"}
	}
	if o.bareResume {
		return usageError{"fake cursor-agent: --resume needs a chat id in print mode"}
	}
	return nil
}

// cursorScenarios are the `fake:scenario=` values the fake cursor-agent plays.
var cursorScenarios = map[string]bool{
	"edit": true, "noop": true, "fail": true, "chatty": true, "slow": true, "hang": true,
	"crash": true, "truncated": true, "unknown-events": true,
}

// Cursor runs the fake `cursor-agent` and returns its exit code.
func Cursor(env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	fail := func(msg string) int {
		fmt.Fprintln(env.Stderr, msg)
		return 1
	}
	o, err := parseCursorArgs(env.Args)
	if err != nil {
		return fail(err.Error())
	}
	// Both checks come before the prompt is looked at (§2.1, §2.2).
	if o.apiKey == "" && env.getenv("CURSOR_API_KEY") == "" {
		return fail(cursorAuthError)
	}
	if !o.trust && !o.force {
		return fail(cursorTrustError)
	}
	if strings.TrimSpace(o.prompt) == "" {
		return fail(cursorNoPrompt)
	}
	d, err := parseDirectives(o.prompt)
	if err != nil {
		return fail("fake cursor-agent: " + err.Error())
	}
	if !cursorScenarios[d.scenario] {
		return fail(fmt.Sprintf("fake cursor-agent: scenario %q is not supported", d.scenario))
	}
	if d.resumeErrorAsResult {
		return fail("fake cursor-agent: fake:resume-error is not supported (cursor-agent has no error result)")
	}
	if d.envFile != "" {
		if err := dumpEnv(d.envFile, env.Environ); err != nil {
			return fail("fake cursor-agent: " + err.Error())
		}
	}
	dir, err := cursorWorkspace(env.Dir, o.workspace)
	if err != nil {
		return fail("Error: " + err.Error())
	}
	home := env.getenv("HOME")
	if home == "" {
		return fail("Error: HOME is not set")
	}
	chat, err := openChat(home, o.resume)
	if err != nil {
		return fail(err.Error())
	}
	if chat.resumed {
		d.recall(chatPrompts(chat.path))
	}
	r := &cursorRun{env: env, o: o, d: d, dir: dir, chat: chat, start: env.Now(), reportedID: chat.id}
	if chat.resumed && d.churnSessionID {
		r.reportedID = uuid.NewString()
	}
	return r.play()
}

func cursorWorkspace(cwd, flag string) (string, error) {
	if flag == "" {
		return cwd, nil
	}
	if !filepath.IsAbs(flag) {
		flag = filepath.Join(cwd, flag)
	}
	if fi, err := os.Stat(flag); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("workspace %s is not a directory", flag)
	}
	return filepath.Clean(flag), nil
}

// chat is the conversation a run appends to.
type chat struct {
	id      string
	path    string
	resumed bool
	prior   int // entries before this run
	f       *os.File
	err     error
}

func openChat(home, resume string) (*chat, error) {
	c := &chat{id: resume}
	if resume == "" {
		c.id = uuid.NewString()
		c.path = CursorChatPath(home, c.id)
		return c, nil
	}
	c.path = CursorChatPath(home, resume)
	if strings.ContainsAny(resume, `/\`) || resume == "." || resume == ".." || !exists(c.path) {
		return nil, fmt.Errorf("Error: Chat not found: %s", resume)
	}
	c.resumed, c.prior = true, countLines(c.path)
	return c, nil
}

// append records an entry, creating the chat file on the first one; a write
// error is kept and reported when the chat is closed.
func (c *chat) append(entry map[string]any) {
	if c.err != nil {
		return
	}
	if c.f == nil {
		if c.err = os.MkdirAll(filepath.Dir(c.path), 0o700); c.err != nil {
			return
		}
		if c.f, c.err = os.OpenFile(c.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); c.err != nil {
			return
		}
	}
	b, _ := json.Marshal(entry)
	if _, err := c.f.Write(append(b, '\n')); err != nil {
		c.err = err
	}
}

func (c *chat) close() error {
	if c.f != nil {
		if err := c.f.Close(); err != nil && c.err == nil {
			c.err = err
		}
	}
	return c.err
}

// cursorModels maps --model values to the display names system/init reports.
var cursorModels = map[string]string{"": "Auto", "auto": "Auto", "sonnet-4": "Sonnet 4", "gpt-5": "GPT-5"}

func (r *cursorRun) modelName() string {
	if m, ok := cursorModels[r.o.model]; ok {
		return m
	}
	return r.o.model
}

func (r *cursorRun) play() int {
	// The chat is written before any output, so a run that cannot keep it
	// fails up front instead of leaving a chat nobody can resume.
	r.chat.append(map[string]any{"role": "user", "text": r.o.prompt, "at": r.env.Now().UTC().Format(time.RFC3339Nano)})
	if r.chat.err != nil {
		fmt.Fprintln(r.env.Stderr, "Error: cannot create chat: "+r.chat.err.Error())
		return 1
	}
	code := r.script()
	return closeAfter(r.env.Stderr, code, "chat", r.chat.close())
}

func (r *cursorRun) script() int {
	keySource := "env"
	if r.o.apiKey != "" {
		keySource = "flag"
	}
	err := r.emit(map[string]any{"type": "system", "subtype": "init", "apiKeySource": keySource, "cwd": r.dir,
		"session_id": r.reportedID, "model": r.modelName(), "permissionMode": "default"})
	if err == nil {
		err = r.emit(map[string]any{"type": "user", "message": map[string]any{"role": "user",
			"content": []any{map[string]any{"type": "text", "text": r.o.prompt}}}})
	}
	if err != nil {
		return exitOf(err)
	}
	var (
		res  map[string]any
		code int
	)
	switch r.d.scenario {
	case "edit", "slow", "truncated":
		res, err = r.edit(false)
	case "unknown-events":
		res, err = r.edit(true)
	case "noop":
		res, err = r.noop()
	case "fail":
		res, code, err = r.fail()
	case "chatty":
		res, err = r.chatty()
	case "hang":
		err = r.hang()
	case "crash":
		return r.crash()
	}
	if err != nil {
		return exitOf(err)
	}
	r.finish(res)
	return code
}

// finish prints the result in the requested format.
func (r *cursorRun) finish(res map[string]any) {
	var out []byte
	switch r.o.outputFormat {
	case "stream-json":
		out, _ = json.Marshal(res)
		if r.d.scenario == "truncated" {
			out = out[:len(out)/2] // cut mid-line, no newline: the process dies while writing
			_, _ = r.env.Stdout.Write(out)
			return
		}
	case "json":
		out, _ = json.Marshal(res)
	default:
		text, _ := res["result"].(string)
		out = []byte(text)
	}
	_, _ = r.env.Stdout.Write(append(out, '\n'))
}

package fakeagent

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
)

const fakeVersion = "2.1.240 (fake)"

// models maps the CLI's aliases to model ids; anything else passes through.
var models = map[string]string{
	"":       "claude-sonnet-4-5-20250929",
	"sonnet": "claude-sonnet-4-5-20250929",
	"opus":   "claude-opus-4-1-20250805",
	"haiku":  "claude-haiku-4-5-20251001",
}

// run plays one scripted conversation.
type run struct {
	env        Env
	o          options
	d          directives
	sess       session
	prompt     string
	model      string
	reportedID string // session id on the stream lines (differs only with churn)
	tr         *transcript
	all        []map[string]any // every line, for --output-format json --verbose
	start      time.Time
	turns      int
	lastUUID   string
}

// stopped ends a run on a signal, with the shell's 128+n exit code.
type stopped struct{ code int }

func (s stopped) Error() string { return fmt.Sprintf("stopped (exit %d)", s.code) }

func newRun(env Env, o options, d directives, sess session, prompt string) *run {
	model, ok := models[o.model]
	if !ok {
		model = o.model
	}
	r := &run{env: env, o: o, d: d, sess: sess, prompt: prompt, model: model,
		reportedID: sess.ID, tr: &transcript{sess: sess}, start: env.Now()}
	if sess.Resumed && d.churnSessionID {
		r.reportedID = uuid.NewString()
	}
	return r
}

func (r *run) play() int {
	code := r.script()
	return closeAfter(r.env.Stderr, code, "transcript", r.tr.close())
}

// closeAfter reports closeErr, the failure to save the conversation (what)
// after the script ended with code, and fails a run that had succeeded.
func closeAfter(stderr io.Writer, code int, what string, closeErr error) int {
	if closeErr != nil {
		fmt.Fprintln(stderr, "Error: write "+what+": "+closeErr.Error())
		if code == 0 {
			code = 1
		}
	}
	return code
}

func (r *run) script() int {
	if err := r.emit(r.initLine()); err != nil {
		return exitOf(err)
	}
	r.record("user", map[string]any{"role": "user", "content": r.prompt})
	var (
		res  map[string]any
		code int
		err  error
	)
	switch r.d.scenario {
	case "edit", "slow", "truncated":
		res, code, err = r.edit(false)
	case "unknown-events":
		res, code, err = r.edit(true)
	case "noop":
		res, code, err = r.noop()
	case "fail":
		res, code, err = r.fail()
	case "chatty":
		res, code, err = r.chatty()
	case "hang":
		err = r.hang()
	case "usage-limit", "usage-limit-legacy", "credit", "auth":
		res, code, err = r.apiError()
	case "max-turns":
		res, code, err = r.maxTurns()
	case "crash":
		return r.crash()
	case "netprobe":
		res, code, err = r.netprobe()
	case "hostile":
		res, code, err = r.hostile()
	case "leak-text", "leak-files", "leak-result":
		res, code, err = r.leak()
	}
	if err != nil {
		return exitOf(err)
	}
	r.finish(res)
	return code
}

func exitOf(err error) int {
	if s, ok := err.(stopped); ok {
		return s.code
	}
	return 1
}

// notLoggedIn is the CLI's answer when it finds no credential (§1.11 item 4).
func (r *run) notLoggedIn() int {
	if err := r.emit(r.initLine()); err != nil {
		return exitOf(err)
	}
	r.finish(r.result(true, "success", map[string]any{
		"result": notLoggedIn, "terminal_reason": "api_error", "stop_reason": "stop_sequence",
	}))
	return 1
}

// notFound is the newer CLI's error result for a missing --resume session.
func (r *run) notFound(nf notFoundError) int {
	r.finish(r.result(true, "error_during_execution", map[string]any{
		"errors": []string{nf.Error()}, "terminal_reason": "completed",
	}))
	return 1
}

func (r *run) initLine() map[string]any {
	mode := r.o.permissionMode
	if r.o.skipPerms {
		mode = "bypassPermissions"
	}
	if mode == "" {
		mode = "default"
	}
	keySource := "none"
	if r.env.getenv("ANTHROPIC_API_KEY") != "" {
		keySource = "ANTHROPIC_API_KEY"
	}
	return map[string]any{
		"type": "system", "subtype": "init", "cwd": r.env.Dir, "session_id": r.reportedID,
		"tools":       []string{"Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "WebFetch", "WebSearch", "TodoWrite"},
		"mcp_servers": []any{}, "model": r.model, "permissionMode": mode,
		"slash_commands": []string{"compact", "review"}, "apiKeySource": keySource,
		"claude_code_version": fakeVersion, "output_style": "default", "uuid": uuid.NewString(),
	}
}

// emit writes one stream line (stream-json only; other formats print at the end)
// and then pauses for the configured delay. A signal ends the run.
func (r *run) emit(m map[string]any) error {
	if err := r.pollSignal(0); err != nil {
		return err
	}
	if _, ok := m["session_id"]; !ok {
		m["session_id"] = r.reportedID
	}
	r.all = append(r.all, m)
	if r.o.outputFormat == "stream-json" {
		b, _ := json.Marshal(m)
		if _, err := r.env.Stdout.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return r.pollSignal(r.d.delay)
}

// emitRaw writes a line that is not JSON (stream-json only).
func (r *run) emitRaw(s string) error {
	if r.o.outputFormat == "stream-json" {
		if _, err := fmt.Fprintln(r.env.Stdout, s); err != nil {
			return err
		}
	}
	return r.pollSignal(r.d.delay)
}

// pollSignal waits up to d for a signal; SIGTERM is ignored with fake:ignore-sigterm.
func (r *run) pollSignal(d time.Duration) error {
	return waitSignal(r.env.Signals, d, r.d.ignoreSigterm)
}

// waitSignal waits up to d for a signal on sigs (nil: none ever arrive) and
// returns the stop it causes; SIGTERM is skipped when ignoreTerm is set.
func waitSignal(sigs <-chan os.Signal, d time.Duration, ignoreTerm bool) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM && ignoreTerm {
				continue
			}
			return stopped{signalExit(s)}
		default:
		}
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM && ignoreTerm {
				continue
			}
			return stopped{signalExit(s)}
		case <-timer.C:
			return nil
		}
	}
}

func signalExit(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 143
}

// finish prints the result in the requested format.
func (r *run) finish(res map[string]any) {
	r.all = append(r.all, res)
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
		if r.o.verbose {
			out, _ = json.Marshal(r.all)
		} else {
			out, _ = json.Marshal(res)
		}
	default:
		text, _ := res["result"].(string)
		if text == "" {
			if errs, ok := res["errors"].([]string); ok {
				text = strings.Join(errs, "\n")
			}
		}
		out = []byte(text)
	}
	_, _ = r.env.Stdout.Write(append(out, '\n'))
}

// record appends a conversation entry to the transcript.
func (r *run) record(typ string, message map[string]any) {
	id := uuid.NewString()
	entry := map[string]any{
		"type": typ, "sessionId": r.sess.ID, "cwd": r.env.Dir, "uuid": id,
		"timestamp": r.env.Now().UTC().Format(time.RFC3339Nano), "message": message,
		"userType": "external", "version": fakeVersion,
	}
	if r.lastUUID != "" {
		entry["parentUuid"] = r.lastUUID
	}
	r.lastUUID = id
	r.tr.append(entry)
}

func cost(turns int) float64 { return math.Round(float64(turns)*0.0125*1e4) / 1e4 }

func turnUsage() map[string]any {
	return map[string]any{"input_tokens": 10, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000, "output_tokens": 50}
}

// newMessage starts a model turn and returns its message id.
func (r *run) newMessage() string {
	r.turns++
	return "msg_fake_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
}

// assistant emits one content block of a message as its own line (§1.4).
func (r *run) assistant(msgID string, block map[string]any) error {
	msg := map[string]any{
		"id": msgID, "type": "message", "role": "assistant", "model": r.model,
		"content": []any{block}, "stop_reason": nil, "usage": turnUsage(),
	}
	r.record("assistant", msg)
	return r.emit(map[string]any{"type": "assistant", "message": msg, "parent_tool_use_id": nil, "uuid": uuid.NewString()})
}

func (r *run) text(msgID, text string) error {
	return r.assistant(msgID, map[string]any{"type": "text", "text": text})
}

// tool emits a tool_use block and returns its id.
func (r *run) tool(msgID, name string, input map[string]any) (string, error) {
	id := "toolu_fake_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	return id, r.assistant(msgID, map[string]any{"type": "tool_use", "id": id, "name": name, "input": input})
}

func (r *run) toolResult(toolID, content string, isError bool) error {
	block := map[string]any{"type": "tool_result", "tool_use_id": toolID, "content": content}
	if isError {
		block["is_error"] = true
	}
	msg := map[string]any{"role": "user", "content": []any{block}}
	r.record("user", msg)
	return r.emit(map[string]any{"type": "user", "message": msg, "parent_tool_use_id": nil, "uuid": uuid.NewString()})
}

// synthetic is the assistant line the CLI writes for an API-level failure.
func (r *run) synthetic(errCode, text string) error {
	msg := map[string]any{
		"id": uuid.NewString(), "type": "message", "role": "assistant", "model": "<synthetic>",
		"stop_reason": "stop_sequence", "usage": map[string]any{"input_tokens": 0, "output_tokens": 0},
		"content": []any{map[string]any{"type": "text", "text": text}},
	}
	r.record("assistant", msg)
	return r.emit(map[string]any{"type": "assistant", "message": msg, "parent_tool_use_id": nil,
		"uuid": uuid.NewString(), "error": errCode, "is_api_error_message": true})
}

// result builds the final line with the fields the SDK requires.
func (r *run) result(isError bool, subtype string, extra map[string]any) map[string]any {
	elapsed := r.env.Now().Sub(r.start).Milliseconds()
	n := int64(r.turns)
	res := map[string]any{
		"type": "result", "subtype": subtype, "is_error": isError,
		"duration_ms": elapsed, "duration_api_ms": elapsed * 9 / 10, "num_turns": r.turns,
		"session_id": r.reportedID, "total_cost_usd": cost(r.turns),
		"usage": map[string]any{"input_tokens": 10 * n, "cache_creation_input_tokens": 100 * n,
			"cache_read_input_tokens": 1000 * n, "output_tokens": 50 * n},
		"modelUsage": map[string]any{r.model: map[string]any{"inputTokens": 10 * n, "outputTokens": 50 * n,
			"costUSD": cost(r.turns)}},
		"permission_denials": []any{}, "stop_reason": "end_turn", "terminal_reason": "completed",
		"uuid": uuid.NewString(),
	}
	for k, v := range extra {
		res[k] = v
	}
	return res
}

func (r *run) intro(plain string) string {
	if r.sess.Resumed {
		return fmt.Sprintf("Resumed session %s (%d earlier transcript entries). %s", r.sess.ID, r.sess.Prior, plain)
	}
	return plain
}

func (r *run) listDir() string {
	entries, err := os.ReadDir(r.env.Dir)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Join(r.env.Dir, e.Name()))
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "No files found"
	}
	return strings.Join(names, "\n")
}

func numbered(content string) string {
	lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
	for i, l := range lines {
		lines[i] = fmt.Sprintf("%6d\t%s", i+1, l)
	}
	return strings.Join(lines, "\n")
}

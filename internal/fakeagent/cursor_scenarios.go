package fakeagent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// cursorRun plays one scripted cursor-agent conversation.
type cursorRun struct {
	env        Env
	o          cursorOptions
	d          directives
	dir        string // workspace
	chat       *chat
	reportedID string // chat id on the stream (differs only with fake:churn-session-id)
	start      time.Time
	calls      int      // model calls so far
	callID     string   // model_call_id of the current model call
	segments   []string // assistant text, concatenated into result.result
}

// emit writes one stream line (stream-json only; the other formats print at the
// end) and then pauses for the configured delay. A signal ends the run.
func (r *cursorRun) emit(m map[string]any) error {
	if err := waitSignal(r.env.Signals, 0, r.d.ignoreSigterm); err != nil {
		return err
	}
	if _, ok := m["session_id"]; !ok {
		m["session_id"] = r.reportedID
	}
	if r.o.outputFormat == "stream-json" {
		b, _ := json.Marshal(m)
		if _, err := r.env.Stdout.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return waitSignal(r.env.Signals, r.d.delay, r.d.ignoreSigterm)
}

func (r *cursorRun) emitRaw(s string) error {
	if r.o.outputFormat == "stream-json" {
		if _, err := fmt.Fprintln(r.env.Stdout, s); err != nil {
			return err
		}
	}
	return waitSignal(r.env.Signals, r.d.delay, r.d.ignoreSigterm)
}

func (r *cursorRun) nowMS() int64 { return r.env.Now().UnixMilli() }

// modelCall starts a model call; its id tags mid-turn segments and tool calls.
func (r *cursorRun) modelCall() {
	r.calls++
	r.callID = fmt.Sprintf("%s-%d", strings.ReplaceAll(uuid.NewString(), "-", "")[:12], r.calls)
}

// thinking emits the lines print mode sends for reasoning; a parser ignores them.
func (r *cursorRun) thinking() error {
	if err := r.emit(map[string]any{"type": "thinking", "subtype": "delta", "text": "Planning the change.", "timestamp_ms": r.nowMS()}); err != nil {
		return err
	}
	return r.emit(map[string]any{"type": "thinking", "subtype": "completed", "timestamp_ms": r.nowMS()})
}

func assistantLine(text string) map[string]any {
	return map[string]any{"type": "assistant", "message": map[string]any{"role": "assistant",
		"content": []any{map[string]any{"type": "text", "text": text}}}}
}

// segment emits one assistant segment (§2.3). Plain stream-json sends it once:
// mid-turn with model_call_id and timestamp_ms, the final one with neither.
// With --stream-partial-output it first streams word deltas carrying only
// timestamp_ms, and the complete line then repeats the whole segment.
func (r *cursorRun) segment(text string, final bool) error {
	if r.o.partial {
		for _, chunk := range strings.SplitAfter(text, " ") {
			if chunk == "" {
				continue
			}
			m := assistantLine(chunk)
			m["timestamp_ms"] = r.nowMS()
			if err := r.emit(m); err != nil {
				return err
			}
		}
	}
	m := assistantLine(text)
	if !final {
		m["model_call_id"] = r.callID
		m["timestamp_ms"] = r.nowMS()
	}
	r.segments = append(r.segments, text)
	r.chat.append(map[string]any{"role": "assistant", "text": text, "at": r.env.Now().UTC().Format(time.RFC3339Nano)})
	return r.emit(m)
}

// tool plays one tool call: started, the action, completed with its result.
// Ids carry a newline, as the real ones do.
func (r *cursorRun) tool(kind string, args map[string]any, do func() map[string]any) error {
	id := fmt.Sprintf("call_%s\nfc_%s_0", uuid.NewString(), strings.ReplaceAll(uuid.NewString(), "-", "")[:16])
	startedAt := strconv.FormatInt(r.nowMS(), 10)
	if err := r.emit(map[string]any{"type": "tool_call", "subtype": "started", "call_id": id,
		"tool_call":     map[string]any{kind: map[string]any{"args": args}, "toolCallId": id, "startedAtMs": startedAt},
		"model_call_id": r.callID, "timestamp_ms": r.nowMS()}); err != nil {
		return err
	}
	result := do()
	r.chat.append(map[string]any{"role": "tool", "kind": kind, "args": args, "result": result})
	return r.emit(map[string]any{"type": "tool_call", "subtype": "completed", "call_id": id,
		"tool_call": map[string]any{kind: map[string]any{"args": args, "result": result}, "toolCallId": id,
			"startedAtMs": startedAt, "completedAtMs": strconv.FormatInt(r.nowMS(), 10)},
		"model_call_id": r.callID, "timestamp_ms": r.nowMS()})
}

// result is the terminal line: no cost, camelCase usage, and result.result the
// segments run together as the real CLI does.
func (r *cursorRun) result(isError bool, text string) map[string]any {
	elapsed := r.env.Now().Sub(r.start).Milliseconds()
	n := int64(r.calls)
	return map[string]any{
		"type": "result", "subtype": "success", "duration_ms": elapsed, "duration_api_ms": elapsed,
		"is_error": isError, "result": text, "session_id": r.reportedID, "request_id": uuid.NewString(),
		"usage": map[string]any{"inputTokens": 1000 * n, "outputTokens": 40 * n, "cacheReadTokens": 2000 * n, "cacheWriteTokens": 0},
	}
}

func (r *cursorRun) intro(plain string) string {
	if r.chat.resumed {
		return fmt.Sprintf("Resumed chat %s (%d earlier entries). %s", r.chat.id, r.chat.prior, plain)
	}
	return plain
}

// edit lists the workspace, writes the requested files (read+edit for existing
// ones, write for new ones) and reports success. With noise, lines a parser
// must skip are interleaved.
func (r *cursorRun) edit(noise bool) (map[string]any, error) {
	r.modelCall()
	if err := r.thinking(); err != nil {
		return nil, err
	}
	if err := r.segment(r.intro("I'll make the requested change."), false); err != nil {
		return nil, err
	}
	if noise {
		if err := r.noise(); err != nil {
			return nil, err
		}
	}
	if err := r.tool("lsToolCall", map[string]any{"path": r.dir}, func() map[string]any {
		return map[string]any{"success": map[string]any{"directoryTreeRoot": map[string]any{"absPath": r.dir, "childrenFiles": r.files()}}}
	}); err != nil {
		return nil, err
	}
	var done []string
	for _, w := range r.d.writes {
		ok, err := r.writeFile(w)
		if err != nil {
			return nil, err
		}
		if ok {
			done = append(done, w.Path)
		}
	}
	final := "Done. I wrote " + strings.Join(done, ", ") + "."
	if len(done) == 0 {
		final = "I could not write any file."
	}
	r.modelCall()
	if err := r.segment(final, true); err != nil {
		return nil, err
	}
	return r.result(false, strings.Join(r.segments, "")), nil
}

func (r *cursorRun) files() []any {
	entries, _ := os.ReadDir(r.dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	out := make([]any, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]any{"name": n})
	}
	return out
}

func (r *cursorRun) writeFile(w fileWrite) (bool, error) {
	abs := filepath.Join(r.dir, w.Path)
	old, readErr := os.ReadFile(abs)
	r.modelCall()
	kind, args := "writeToolCall", map[string]any{"path": abs, "fileText": w.Content}
	if readErr == nil {
		if err := r.tool("readToolCall", map[string]any{"path": abs}, func() map[string]any {
			return map[string]any{"success": map[string]any{"content": string(old),
				"totalLines": strings.Count(string(old), "\n"), "fileSize": len(old)}}
		}); err != nil {
			return false, err
		}
		r.modelCall()
		kind, args = "editToolCall", map[string]any{"path": abs, "streamContent": w.Content}
	}
	ok := false
	err := r.tool(kind, args, func() map[string]any {
		if err := writeTree(abs, w.Content); err != nil {
			return map[string]any{"error": map[string]any{"errorMessage": err.Error()}}
		}
		ok = true
		return map[string]any{"success": map[string]any{"path": abs,
			"linesCreated": strings.Count(w.Content, "\n") + 1, "fileSize": len(w.Content)}}
	})
	return ok, err
}

// noise emits lines a parser must skip or tolerate: unknown types and
// subtypes, thinking, a block without text, an unknown tool kind, a completed
// call whose start never came, a prompt echo and a non-JSON line.
func (r *cursorRun) noise() error {
	orphan := "call_orphan_" + uuid.NewString()
	lines := []map[string]any{
		{"type": "system", "subtype": "task_notification", "message": "indexing the workspace"},
		{"type": "thinking", "subtype": "delta", "text": "Hel", "timestamp_ms": r.nowMS()},
		{"type": "interaction_query", "query": map[string]any{"webFetchRequestQuery": map[string]any{"url": "https://example.com"}}},
		{"type": "telemetry_snapshot", "data": map[string]any{"x": 1}},
		{"type": "assistant", "message": map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "hologram", "payload": "ignored"}}},
			"model_call_id": r.callID, "timestamp_ms": r.nowMS()},
		{"type": "tool_call", "subtype": "started", "call_id": "call_sem_1", "tool_call": map[string]any{
			"semanticSearchToolCall": map[string]any{"args": map[string]any{"query": "greeting"}}}},
		{"type": "tool_call", "subtype": "progress", "call_id": "call_sem_1", "tool_call": map[string]any{
			"semanticSearchToolCall": map[string]any{"args": map[string]any{"query": "greeting"}}}},
		{"type": "tool_call", "subtype": "completed", "call_id": "call_sem_1", "tool_call": map[string]any{
			"semanticSearchToolCall": map[string]any{"result": map[string]any{"success": map[string]any{"results": []any{}}}}}},
		{"type": "tool_call", "subtype": "completed", "call_id": orphan, "tool_call": map[string]any{
			"readToolCall": map[string]any{"result": map[string]any{"success": map[string]any{"content": "", "totalLines": 0}}}}},
		{"type": "user", "message": map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "echo of the prompt"}}}},
	}
	for _, l := range lines {
		if err := r.emit(l); err != nil {
			return err
		}
	}
	return r.emitRaw("[debug] fake: this line is not JSON")
}

func (r *cursorRun) noop() (map[string]any, error) {
	r.modelCall()
	if err := r.segment(r.intro("Nothing needs to change for: "+r.d.firstLine), true); err != nil {
		return nil, err
	}
	return r.result(false, strings.Join(r.segments, "")), nil
}

// fail plays a run the agent gives up on. No failing result line is known from
// shipped builds (§2.3); the fake sends one with is_error:true so the worker's
// handling of it is exercised, and exits 1.
func (r *cursorRun) fail() (map[string]any, int, error) {
	r.modelCall()
	if err := r.thinking(); err != nil {
		return nil, 0, err
	}
	if err := r.segment(r.intro("Let me run the tests first."), false); err != nil {
		return nil, 0, err
	}
	if err := r.tool("shellToolCall", map[string]any{"command": "make test", "workingDirectory": r.dir}, func() map[string]any {
		return map[string]any{"failure": map[string]any{"command": "make test", "exitCode": 2, "stdout": "",
			"stderr": "make: *** No rule to make target 'test'.  Stop."}}
	}); err != nil {
		return nil, 0, err
	}
	r.modelCall()
	if err := r.segment("The tests cannot run, so I could not complete the task.", true); err != nil {
		return nil, 0, err
	}
	return r.result(true, "The agent could not complete the task: make test failed"), 1, nil
}

func (r *cursorRun) chatty() (map[string]any, error) {
	for i := 1; i <= r.d.count; i++ {
		r.modelCall()
		if err := r.segment(fmt.Sprintf("Progress note %d of %d.", i, r.d.count), false); err != nil {
			return nil, err
		}
	}
	r.modelCall()
	if err := r.segment(fmt.Sprintf("Finished after %d notes.", r.d.count), true); err != nil {
		return nil, err
	}
	return r.result(false, strings.Join(r.segments, "")), nil
}

// hang starts working and then waits for a signal that ends it.
func (r *cursorRun) hang() error {
	r.modelCall()
	if err := r.segment(r.intro("Working on it…"), false); err != nil {
		return err
	}
	for {
		s := <-r.env.Signals // nil channel: hang for good, like the real thing would
		if s == syscall.SIGTERM && r.d.ignoreSigterm {
			continue
		}
		return stopped{signalExit(s)}
	}
}

// crash dies like an unhandled exception in the CLI: stack on stderr, exit 1, no result.
func (r *cursorRun) crash() int {
	const bundle = "/home/agent/.local/share/cursor-agent/versions/2026.09.10-fake/index.js"
	fmt.Fprintf(r.env.Stderr, "%s:4242\n", bundle)
	fmt.Fprintln(r.env.Stderr, "        throw new TypeError(\"fake crash\");")
	fmt.Fprintln(r.env.Stderr, "")
	fmt.Fprintln(r.env.Stderr, "TypeError: Cannot read properties of undefined (reading 'toolCall')")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(r.env.Stderr, "    at frame%d (%s:%d:17)\n", i, bundle, 4000+i)
	}
	fmt.Fprintln(r.env.Stderr, "Node.js v22.19.0")
	return 1
}

package fakeagent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// edit reads the tree, writes the requested files (Read+Edit for existing ones,
// Write for new ones) and reports success. With noise, unknown event types and
// subtypes are interleaved, as newer CLI builds would send.
func (r *run) edit(noise bool) (map[string]any, int, error) {
	say := func(err error) error { return err }
	if noise {
		say = func(err error) error {
			if err != nil {
				return err
			}
			return r.noise()
		}
	}
	id := r.newMessage()
	if err := r.assistant(id, map[string]any{"type": "thinking", "thinking": "", "signature": "ZmFrZQ=="}); err != nil {
		return nil, 0, err
	}
	if err := say(r.text(id, r.intro("I'll make the requested change."))); err != nil {
		return nil, 0, err
	}
	glob, err := r.tool(id, "Glob", map[string]any{"pattern": "*"})
	if err != nil {
		return nil, 0, err
	}
	if err := r.emit(map[string]any{"type": "rate_limit_event", "uuid": uuid.NewString(), "rate_limit_info": map[string]any{
		"status": "allowed", "resetsAt": r.env.Now().Add(5 * time.Hour).Unix(), "rateLimitType": "five_hour", "isUsingOverage": false,
	}}); err != nil {
		return nil, 0, err
	}
	if err := say(r.toolResult(glob, r.listDir(), false)); err != nil {
		return nil, 0, err
	}
	var done []string
	for _, w := range r.d.writes {
		ok, err := r.writeFile(w)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			done = append(done, w.Path)
		}
	}
	final := "Done. I wrote " + strings.Join(done, ", ") + "."
	if len(done) == 0 {
		final = "I could not write any file."
	}
	if err := say(r.text(r.newMessage(), final)); err != nil {
		return nil, 0, err
	}
	return r.result(false, "success", map[string]any{"result": final}), 0, nil
}

// writeFile plays the tool calls for one file and changes it on disk.
func (r *run) writeFile(w fileWrite) (bool, error) {
	abs := filepath.Join(r.env.Dir, w.Path)
	old, readErr := os.ReadFile(abs)
	var toolID string
	var err error
	if readErr == nil {
		id := r.newMessage()
		if toolID, err = r.tool(id, "Read", map[string]any{"file_path": abs}); err != nil {
			return false, err
		}
		if err = r.toolResult(toolID, numbered(string(old)), false); err != nil {
			return false, err
		}
		toolID, err = r.tool(r.newMessage(), "Edit", map[string]any{"file_path": abs, "old_string": string(old), "new_string": w.Content})
	} else {
		toolID, err = r.tool(r.newMessage(), "Write", map[string]any{"file_path": abs, "content": w.Content})
	}
	if err != nil {
		return false, err
	}
	if werr := writeTree(abs, w.Content); werr != nil {
		return false, r.toolResult(toolID, "<tool_use_error>"+werr.Error()+"</tool_use_error>", true)
	}
	msg := "File created successfully at: " + abs
	if readErr == nil {
		msg = fmt.Sprintf("The file %s has been updated successfully.", abs)
	}
	return true, r.toolResult(toolID, msg, false)
}

func writeTree(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// noise emits lines a parser must skip: unknown types and subtypes, unknown
// content blocks, a partial-message event, a prompt echo and a non-JSON line.
func (r *run) noise() error {
	lines := []map[string]any{
		{"type": "system", "subtype": "hook_started", "hook_name": "SessionStart:startup", "uuid": uuid.NewString()},
		{"type": "system", "subtype": "quantum_flux", "payload": map[string]any{"level": 3}},
		{"type": "telemetry_snapshot", "data": map[string]any{"x": 1}},
		{"type": "stream_event", "event": map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": "Hel"}}, "parent_tool_use_id": nil, "uuid": uuid.NewString()},
		{"type": "assistant", "message": map[string]any{"id": "msg_fake_unknownblock", "role": "assistant", "model": r.model,
			"content": []any{map[string]any{"type": "hologram", "payload": "ignored"}}}, "parent_tool_use_id": nil},
		{"type": "user", "message": map[string]any{"role": "user", "content": "echo of the prompt"}, "isReplay": true},
		{"type": "rate_limit_event", "rate_limit_info": map[string]any{"status": "allowed_warning", "utilization": 0.9,
			"resetsAt": r.env.Now().Add(time.Hour).Unix(), "rateLimitType": "seven_day"}},
	}
	for _, l := range lines {
		if err := r.emit(l); err != nil {
			return err
		}
	}
	return r.emitRaw("[debug] fake: this line is not JSON")
}

func (r *run) noop() (map[string]any, int, error) {
	text := r.intro("Nothing needs to change for: " + r.d.firstLine)
	if err := r.text(r.newMessage(), text); err != nil {
		return nil, 0, err
	}
	return r.result(false, "success", map[string]any{"result": text}), 0, nil
}

func (r *run) fail() (map[string]any, int, error) {
	id := r.newMessage()
	if err := r.text(id, r.intro("Let me run the tests first.")); err != nil {
		return nil, 0, err
	}
	toolID, err := r.tool(id, "Bash", map[string]any{"command": "make test", "description": "Run the tests"})
	if err != nil {
		return nil, 0, err
	}
	if err := r.toolResult(toolID, "Exit code 2\nmake: *** No rule to make target 'test'.  Stop.", true); err != nil {
		return nil, 0, err
	}
	if err := r.text(r.newMessage(), "The tests cannot run, so I could not complete the task."); err != nil {
		return nil, 0, err
	}
	return r.result(true, "error_during_execution", map[string]any{
		"errors": []string{"The agent could not complete the task: make test failed"}, "terminal_reason": "completed",
	}), 1, nil
}

func (r *run) chatty() (map[string]any, int, error) {
	for i := 1; i <= r.d.count; i++ {
		if err := r.text(r.newMessage(), fmt.Sprintf("Progress note %d of %d.", i, r.d.count)); err != nil {
			return nil, 0, err
		}
	}
	// Files asked for with fake:write are written after the notes, so a chatty
	// run can also leave a change to publish.
	for _, w := range r.d.writes {
		if _, err := r.writeFile(w); err != nil {
			return nil, 0, err
		}
	}
	text := fmt.Sprintf("Finished after %d notes.", r.d.count)
	return r.result(false, "success", map[string]any{"result": text}), 0, nil
}

// hang starts working and then waits for a signal that ends it.
func (r *run) hang() error {
	if err := r.text(r.newMessage(), r.intro("Working on it…")); err != nil {
		return err
	}
	for s := range r.env.Signals {
		if s == syscall.SIGTERM && r.d.ignoreSigterm {
			continue
		}
		return stopped{signalExit(s)}
	}
	select {} // no signal source: hang for good, like the real thing would
}

// apiError plays a failed API call: usage limit, billing, or a bad credential.
func (r *run) apiError() (map[string]any, int, error) {
	resets := r.env.Now().UTC().Truncate(time.Hour).Add(3 * time.Hour)
	var errCode, text string
	status := 0
	switch r.d.scenario {
	case "usage-limit":
		if err := r.emit(map[string]any{"type": "rate_limit_event", "uuid": uuid.NewString(), "rate_limit_info": map[string]any{
			"status": "rejected", "resetsAt": resets.Unix(), "rateLimitType": "five_hour", "isUsingOverage": false,
		}}); err != nil {
			return nil, 0, err
		}
		errCode, status = "rate_limit", 429
		text = fmt.Sprintf("You've hit your limit · resets %s (UTC)", resets.Format("3pm"))
	case "usage-limit-legacy":
		text = fmt.Sprintf("Claude AI usage limit reached|%d", resets.Unix())
	case "credit":
		errCode, status, text = "billing_error", 400, "Credit balance is too low"
	case "auth":
		errCode, status, text = "authentication_failed", 401, "Invalid API key · Please run /login"
	}
	if errCode != "" {
		if err := r.synthetic(errCode, text); err != nil {
			return nil, 0, err
		}
	}
	extra := map[string]any{"result": text, "terminal_reason": "api_error", "stop_reason": "stop_sequence", "total_cost_usd": 0}
	if status != 0 {
		extra["api_error_status"] = status
	}
	return r.result(true, "success", extra), 1, nil
}

func (r *run) maxTurns() (map[string]any, int, error) {
	n := r.o.maxTurns
	if n == 0 {
		n = 2
	}
	for i := 0; i < n; i++ {
		toolID, err := r.tool(r.newMessage(), "Bash", map[string]any{"command": "ls -la"})
		if err != nil {
			return nil, 0, err
		}
		if err := r.toolResult(toolID, r.listDir(), false); err != nil {
			return nil, 0, err
		}
	}
	return r.result(true, "error_max_turns", map[string]any{
		"errors": []string{fmt.Sprintf("Reached maximum number of turns (%d)", n)}, "terminal_reason": "max_turns", "stop_reason": "tool_use",
	}), 1, nil
}

// crash dies like an unhandled exception in the CLI: stack on stderr, exit 2, no result.
func (r *run) crash() int {
	fmt.Fprintln(r.env.Stderr, "file:///usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js:4242")
	fmt.Fprintln(r.env.Stderr, "        throw new TypeError(\"fake crash\");")
	fmt.Fprintln(r.env.Stderr, "              ^")
	fmt.Fprintln(r.env.Stderr, "")
	fmt.Fprintln(r.env.Stderr, "TypeError: Cannot read properties of undefined (reading 'content')")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(r.env.Stderr, "    at frame%d (file:///usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js:%d:17)\n", i, 4000+i)
	}
	fmt.Fprintln(r.env.Stderr, "Node.js v20.19.0")
	return 2
}

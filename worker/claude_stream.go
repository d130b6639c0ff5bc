package worker

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// claudeParser reads `claude -p --output-format stream-json --verbose` output
// (docs/agent-clis.md §1.4-§1.5). Unknown types, subtypes, fields and non-JSON lines
// are ignored: the format grows with every CLI release.
type claudeParser struct {
	now       func() time.Time
	workspace string
	sessionID string // canonical: the id the job asked for (§1.8)

	initSeen      bool
	initSessionID string
	seen          map[string]bool // dedupe keys of emitted blocks
	texts         []string        // main-agent prose, for the fallback summary

	assistantError string   // top-level "error" of an assistant line (rate_limit, billing_error, …)
	synthetic      []string // text of synthetic (API error) assistant messages
	rateLimitReset int64    // resetsAt of a rejected rate_limit_event
	result         map[string]any
}

func newClaudeParser(sessionID, workspace string, now func() time.Time) *claudeParser {
	return &claudeParser{now: now, workspace: workspace, sessionID: sessionID, seen: map[string]bool{}}
}

func (p *claudeParser) line(typ, text string, data map[string]any) workerproto.Line {
	return workerproto.Line{Type: typ, Text: cleanText(text, maxText), Data: data, At: p.now()}
}

func (p *claudeParser) Line(raw []byte, emit func(workerproto.Line)) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return // stray non-JSON output or a line cut off at exit
	}
	switch str(m, "type") {
	case "system":
		p.system(m, emit)
	case "assistant":
		p.assistant(m, emit)
	case "user":
		p.user(m, emit)
	case "rate_limit_event":
		p.rateLimit(m, emit)
	case "result":
		// Old builds could send a second, bogus result after the real one.
		if p.result == nil {
			p.result = m
		}
	}
}

func (p *claudeParser) system(m map[string]any, emit func(workerproto.Line)) {
	switch str(m, "subtype") {
	case "init":
		if p.initSeen {
			return
		}
		p.initSeen = true
		p.initSessionID = str(m, "session_id")
		text := "Agent started"
		if model := oneLine(str(m, "model"), 100); model != "" {
			text += " (model " + model + ")"
		}
		emit(p.line(workerproto.TypeStatus, text, nil))
	case "api_retry":
		what := ""
		if s := num(m, "error_status"); s > 0 {
			what = fmt.Sprintf(" %d", int(s))
		}
		if e := oneLine(str(m, "error"), 100); e != "" {
			what += " " + e
		}
		text := fmt.Sprintf("Claude API error%s; retrying (attempt %d of %d) in %s", what,
			int(num(m, "attempt")), int(num(m, "max_retries")),
			(time.Duration(num(m, "retry_delay_ms")) * time.Millisecond).Round(time.Millisecond))
		emit(p.line(workerproto.TypeLog, text, nil))
	}
}

func (p *claudeParser) assistant(m map[string]any, emit func(workerproto.Line)) {
	msg := obj(m, "message")
	if msg == nil {
		return
	}
	if e := str(m, "error"); e != "" {
		p.assistantError = e
	}
	synthetic := str(msg, "model") == "<synthetic>" || boolean(m, "is_api_error_message")
	subagent := str(m, "parent_tool_use_id") != ""
	id := str(msg, "id")
	for _, b := range blocks(msg["content"]) {
		switch str(b, "type") {
		case "text":
			text := str(b, "text")
			if strings.TrimSpace(text) == "" {
				continue
			}
			if synthetic {
				// The CLI's own error message dressed as prose: it feeds the
				// failure classification instead of the transcript.
				p.synthetic = append(p.synthetic, text)
				continue
			}
			if subagent || (id != "" && !p.first(id+"\x00text\x00"+text)) {
				continue // subagent prose is internal; its report returns as a tool result
			}
			p.texts = append(p.texts, text)
			emit(p.line(workerproto.TypeMessage, text, nil))
		case "tool_use":
			name := str(b, "name")
			toolID := str(b, "id")
			key := toolID
			if key == "" {
				in, _ := json.Marshal(b["input"])
				key = id + "\x00" + name + "\x00" + string(in)
			}
			if name == "" || !p.first("tool_use\x00"+key) {
				continue
			}
			summary := toolSummary(name, obj(b, "input"), p.workspace)
			emit(p.line(workerproto.TypeTool, summary, map[string]any{"name": name, "summary": summary, "id": toolID}))
		}
	}
}

// first reports whether a block is new. The CLI repeats message.id across lines
// (one block per line) and may resend a block, so blocks are keyed by message id
// (or tool id) plus a hash of their content.
func (p *claudeParser) first(key string) bool {
	sum := sha256.Sum256([]byte(key))
	key = string(sum[:])
	if p.seen[key] {
		return false
	}
	p.seen[key] = true
	return true
}

func (p *claudeParser) user(m map[string]any, emit func(workerproto.Line)) {
	msg := obj(m, "message")
	if msg == nil {
		return
	}
	content, ok := msg["content"].([]any)
	if !ok {
		return // a plain string is the prompt echoed back, not a tool result
	}
	for _, c := range content {
		b, ok := c.(map[string]any)
		if !ok || str(b, "type") != "tool_result" || !boolean(b, "is_error") {
			continue
		}
		if !p.first("tool_result\x00" + str(b, "tool_use_id") + "\x00" + toolResultText(b["content"])) {
			continue
		}
		detail := firstLine(stripToolErrorTags(toolResultText(b["content"])), 300)
		if detail == "" {
			detail = "no output"
		}
		emit(p.line(workerproto.TypeError, "Tool failed: "+detail, nil))
	}
}

func (p *claudeParser) rateLimit(m map[string]any, emit func(workerproto.Line)) {
	info := obj(m, "rate_limit_info")
	if info == nil || str(info, "status") != "rejected" || p.rateLimitReset != 0 {
		return
	}
	p.rateLimitReset = int64(num(info, "resetsAt"))
	if p.rateLimitReset == 0 {
		p.rateLimitReset = -1 // remember the rejection even without a reset time
	}
	text := "Claude usage limit reached"
	if kind := oneLine(str(info, "rateLimitType"), 40); kind != "" {
		text += " (" + kind + ")"
	}
	if p.rateLimitReset > 0 {
		text += "; resets " + formatEpoch(p.rateLimitReset)
	}
	emit(p.line(workerproto.TypeError, text, nil))
}

func (p *claudeParser) Finish(exit processExit) (workerproto.Result, int, string) {
	run := ClaudeRun{ExitCode: exit.Code, Stderr: exit.StderrTail, AssistantError: p.assistantError,
		SyntheticText: strings.Join(p.synthetic, "\n")}
	if p.rateLimitReset > 0 {
		run.RateLimitResetsAt = p.rateLimitReset
	}
	res := workerproto.Result{SessionID: p.sessionID}
	prose := strings.Join(p.texts, "\n\n")
	if r := p.result; r != nil {
		run.HaveResult = true
		run.IsError = boolean(r, "is_error")
		run.Subtype = str(r, "subtype")
		run.ResultText = str(r, "result")
		run.APIErrorStatus = int(num(r, "api_error_status"))
		run.TerminalReason = str(r, "terminal_reason")
		run.NumTurns = int(num(r, "num_turns"))
		for _, e := range arr(r, "errors") {
			if s, ok := e.(string); ok {
				run.Errors = append(run.Errors, s)
			}
		}
		u := obj(r, "usage")
		res.Usage = workerproto.Usage{
			DurationMS:   int64(num(r, "duration_ms")),
			Turns:        run.NumTurns,
			CostUSD:      num(r, "total_cost_usd"),
			InputTokens:  int64(num(u, "input_tokens") + num(u, "cache_creation_input_tokens") + num(u, "cache_read_input_tokens")),
			OutputTokens: int64(num(u, "output_tokens")),
		}
	}
	res.Summary = run.ResultText
	return settle(res, Classify(run), prose)
}

// toolSummary is the one line a person sees for a tool call.
func toolSummary(name string, in map[string]any, workspace string) string {
	arg := func(k string) string { return oneLine(str(in, k), 200) }
	s := name
	switch name {
	case "Read", "Edit", "Write", "MultiEdit", "NotebookEdit":
		path := str(in, "file_path")
		if path == "" {
			path = str(in, "notebook_path")
		}
		if path = oneLine(relPath(path, workspace), 200); path != "" {
			s = name + " " + path
		}
	case "Bash":
		if cmd := firstLine(str(in, "command"), 120); cmd != "" {
			s = "Run: " + cmd
		}
	case "Grep":
		if v := arg("pattern"); v != "" {
			s = `Search "` + v + `"`
		}
	case "Glob":
		if v := arg("pattern"); v != "" {
			s = "Find " + v
		}
	case "WebFetch":
		if v := arg("url"); v != "" {
			s = "Fetch " + v
		}
	case "WebSearch":
		if v := arg("query"); v != "" {
			s = `Web search "` + v + `"`
		}
	case "Task", "Agent":
		if v := arg("description"); v != "" {
			s = "Subagent: " + v
		}
	case "TodoWrite":
		s = "Update todo list"
	default:
		if rest, ok := strings.CutPrefix(name, "mcp__"); ok {
			if srv, tool, ok := strings.Cut(rest, "__"); ok && srv != "" && tool != "" {
				s = srv + ": " + tool
			}
		}
	}
	return oneLine(s, 300)
}

// relPath shows a path relative to the workspace when it lies inside it.
func relPath(path, workspace string) string {
	if path == "" || workspace == "" || !filepath.IsAbs(path) {
		return path
	}
	rel, err := filepath.Rel(workspace, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return path
	}
	return rel
}

// toolResultText flattens tool_result content, a string or [{type:text,text}].
func toolResultText(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var parts []string
		for _, b := range c {
			if m, ok := b.(map[string]any); ok && str(m, "type") == "text" {
				parts = append(parts, str(m, "text"))
			}
		}
		return strings.Join(parts, "\n")
	}
	return ""
}

func stripToolErrorTags(s string) string {
	s = strings.ReplaceAll(s, "<tool_use_error>", "")
	return strings.ReplaceAll(s, "</tool_use_error>", "")
}

// blocks returns the content blocks of a message; a plain string counts as one text block.
func blocks(v any) []map[string]any {
	switch c := v.(type) {
	case string:
		return []map[string]any{{"type": "text", "text": c}}
	case []any:
		out := make([]map[string]any, 0, len(c))
		for _, b := range c {
			if m, ok := b.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func formatEpoch(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }

// Tolerant accessors: a field of an unexpected type reads as its zero value.

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}

func boolean(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func arr(m map[string]any, k string) []any {
	a, _ := m[k].([]any)
	return a
}

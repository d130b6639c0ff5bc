package worker

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// cursorParser reads `cursor-agent -p --output-format stream-json` output
// (docs/agent-clis.md §2.3). Unknown types, subtypes, fields and non-JSON lines are
// ignored.
//
// Assistant text comes in two shapes. Without --stream-partial-output every
// assistant line is a complete segment (the text between tool calls): mid-turn
// segments carry model_call_id and timestamp_ms, the final one neither. With it,
// delta lines (timestamp_ms, no model_call_id) stream the segment and the model
// call then repeats the whole segment (with model_call_id mid-turn, without
// timestamp_ms at the end). Deltas are collected and the segment is emitted once,
// when its complete line (or a boundary: tool call, result) closes it.
type cursorParser struct {
	now       func() time.Time
	workspace string
	resumed   string // chat id the job resumed: canonical when set

	initSeen bool
	initID   string // chat id from system/init

	pending  strings.Builder // deltas of the open segment
	boundary string          // segment a boundary closed, whose repeat may still come
	texts    []string        // emitted segments, for the fallback summary

	seen     map[string]bool // hashed keys of emitted tool calls and handled results
	anonOpen map[string]int  // started calls without any id, per kind
	result   map[string]any
}

func newCursorParser(resumed, workspace string, now func() time.Time) *cursorParser {
	return &cursorParser{now: now, workspace: workspace, resumed: resumed,
		seen: map[string]bool{}, anonOpen: map[string]int{}}
}

func (p *cursorParser) line(typ, text string, data map[string]any) workerproto.Line {
	return workerproto.Line{Type: typ, Text: cleanText(text, maxText), Data: data, At: p.now()}
}

func (p *cursorParser) Line(raw []byte, emit func(workerproto.Line)) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return // stray non-JSON output or a line cut off at exit
	}
	switch str(m, "type") {
	case "system":
		if str(m, "subtype") == "init" && !p.initSeen {
			p.initSeen = true
			if id := str(m, "session_id"); plausibleChatID(id) {
				p.initID = id
			}
			text := "Agent started"
			if model := oneLine(str(m, "model"), 100); model != "" {
				text += " (model " + model + ")"
			}
			emit(p.line(workerproto.TypeStatus, text, nil))
		}
	case "assistant":
		p.assistant(m, emit)
	case "tool_call":
		p.flush(emit)
		p.toolCall(m, emit)
	case "result":
		p.flush(emit)
		if p.result == nil {
			p.result = m
		}
	}
	// user (the prompt echoed back), thinking, and anything newer: ignored.
}

func (p *cursorParser) assistant(m map[string]any, emit func(workerproto.Line)) {
	msg := obj(m, "message")
	if msg == nil {
		return
	}
	var parts []string
	for _, b := range blocks(msg["content"]) {
		if str(b, "type") == "text" {
			parts = append(parts, str(b, "text"))
		}
	}
	text := strings.Join(parts, "")
	if m["timestamp_ms"] != nil && !present(m, "model_call_id") {
		// A delta. Some builds also send the whole-segment repeat in this shape
		// (reported by telltale's "cursor-double-reply" notes): a "delta" equal
		// to everything so far is that repeat. Requiring two runes keeps "1","1"
		// (as in "11") apart.
		if p.pending.Len() > 0 && text == p.pending.String() && utf8.RuneCountInString(strings.TrimSpace(text)) >= 2 {
			p.flush(emit)
			return
		}
		p.pending.WriteString(text)
		p.boundary = ""
		return
	}
	p.closeSegment(text, emit)
}

// present reports a field with a non-empty value.
func present(m map[string]any, k string) bool {
	switch v := m[k].(type) {
	case nil:
		return false
	case string:
		return v != ""
	}
	return true
}

// closeSegment handles a complete segment line: it emits the segment once,
// whether or not its deltas came first.
func (p *cursorParser) closeSegment(complete string, emit func(workerproto.Line)) {
	pend, closed := p.pending.String(), p.boundary
	p.pending.Reset()
	p.boundary = ""
	if strings.TrimSpace(pend) != "" && !strings.Contains(complete, pend) {
		p.say(pend, emit) // deltas of a segment whose repeat never came
	}
	c := strings.TrimSpace(complete)
	if c == "" || (closed != "" && strings.TrimSpace(closed) == c) {
		return
	}
	p.say(complete, emit)
}

// flush closes the open segment at a boundary and remembers it so that its
// repeat, if it comes later, is dropped.
func (p *cursorParser) flush(emit func(workerproto.Line)) {
	if pend := p.pending.String(); strings.TrimSpace(pend) != "" {
		p.say(pend, emit)
		p.boundary = pend
	}
	p.pending.Reset()
}

func (p *cursorParser) say(text string, emit func(workerproto.Line)) {
	p.texts = append(p.texts, text)
	emit(p.line(workerproto.TypeMessage, text, nil))
}

// first reports whether key is new; keys are hashed so huge ids cost little.
func (p *cursorParser) first(key string) bool {
	sum := sha256.Sum256([]byte(key))
	k := string(sum[:])
	if p.seen[k] {
		return false
	}
	p.seen[k] = true
	return true
}

// toolCall emits one tool event per call: at "started", or at "completed" when
// no start was seen; a failed result adds an error event. Calls are paired by
// call_id, passed through untouched (ids can hold newlines).
func (p *cursorParser) toolCall(m map[string]any, emit func(workerproto.Line)) {
	sub := str(m, "subtype")
	if sub != "started" && sub != "completed" {
		return
	}
	tc := obj(m, "tool_call")
	kind, call := cursorToolKind(tc)
	if kind == "" {
		return
	}
	id := str(m, "call_id")
	if id == "" {
		id = str(tc, "toolCallId")
	}
	if id == "" {
		id = str(obj(call, "args"), "toolCallId")
	}
	if id == "" {
		// Old builds sent no id at all: pair by kind, in order.
		if sub == "started" {
			p.anonOpen[kind]++
			p.emitTool(kind, call, id, emit)
			return
		}
		if p.anonOpen[kind] > 0 {
			p.anonOpen[kind]--
		} else {
			p.emitTool(kind, call, id, emit)
		}
		p.toolResult(obj(call, "result"), emit)
		return
	}
	if p.first("tool\x00" + id) {
		p.emitTool(kind, call, id, emit)
	}
	if sub == "completed" && p.first("result\x00"+id) {
		p.toolResult(obj(call, "result"), emit)
	}
}

func (p *cursorParser) emitTool(kind string, call map[string]any, id string, emit func(workerproto.Line)) {
	name, summary := cursorToolSummary(kind, call, p.workspace)
	emit(p.line(workerproto.TypeTool, summary, map[string]any{"name": name, "summary": summary, "id": id}))
}

// toolResult reports a failed tool call: result is one of success, error
// (errorMessage or error), rejected (reason) or failure (exit code, output).
func (p *cursorParser) toolResult(res map[string]any, emit func(workerproto.Line)) {
	var detail string
	switch {
	case res["error"] != nil:
		if s, ok := res["error"].(string); ok {
			detail = firstLine(s, 300)
		} else {
			e := obj(res, "error")
			detail = firstLine(firstNonEmpty(str(e, "errorMessage"), str(e, "error"), str(e, "message")), 300)
		}
		if detail == "" {
			detail = "no details"
		}
	case res["rejected"] != nil:
		detail = "rejected"
		if r := firstLine(str(obj(res, "rejected"), "reason"), 300); r != "" {
			detail += ": " + r
		}
	case res["failure"] != nil:
		f := obj(res, "failure")
		var parts []string
		if code := num(f, "exitCode"); code != 0 {
			parts = append(parts, fmt.Sprintf("exit code %d", int(code)))
		}
		if out := firstLine(firstNonEmpty(str(f, "stderr"), str(f, "error"), str(f, "stdout")), 300); out != "" {
			parts = append(parts, out)
		}
		detail = strings.Join(parts, ": ")
		if detail == "" {
			detail = "no details"
		}
	default:
		return
	}
	emit(p.line(workerproto.TypeError, "Tool failed: "+detail, nil))
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// chatID is the result's session id: the resumed chat, else the one the CLI
// reported for the new chat.
func (p *cursorParser) chatID() string {
	if p.resumed != "" {
		return p.resumed
	}
	if p.initID != "" {
		return p.initID
	}
	if id := str(p.result, "session_id"); plausibleChatID(id) {
		return id
	}
	return ""
}

func (p *cursorParser) Finish(exit processExit) (workerproto.Result, int, string) {
	if pend := p.pending.String(); strings.TrimSpace(pend) != "" {
		// Deltas cut off by the exit: too late for an event, kept for the summary.
		p.texts = append(p.texts, pend)
	}
	p.pending.Reset()
	res := workerproto.Result{SessionID: p.chatID()}
	prose := strings.Join(p.texts, "\n\n")
	var c Classification
	if r := p.result; r != nil {
		u := obj(r, "usage")
		res.Usage = workerproto.Usage{
			DurationMS: int64(num(r, "duration_ms")),
			// Cached input is counted apart from inputTokens; the total matches
			// what the claude provider reports.
			InputTokens:  int64(num(u, "inputTokens") + num(u, "cacheReadTokens") + num(u, "cacheWriteTokens")),
			OutputTokens: int64(num(u, "outputTokens")),
		}
		if boolean(r, "is_error") {
			c = classifyCursorError(str(r, "result"))
		} else {
			res.Summary = str(r, "result")
		}
	} else if exit.Code != 0 {
		c = classifyCursorExit(exit, p.resumed)
	}
	return settle(res, c, prose)
}

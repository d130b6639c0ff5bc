package supervisor

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// coalescer keeps a chatty agent from flooding the task: at most rate events a
// second reach the shipper. Over the budget, pending events of the same kind are
// merged (prose joined, tool calls listed) instead of dropped, and close hands
// over everything left, so the last word before completion is never lost.
//
// Merging happens as an event arrives, into the newest pending event of its
// kind, so a line costs the same however much is pending: its text is appended
// to a growing buffer and its runes are counted once.
type coalescer struct {
	mu      sync.Mutex
	pending []*pendingItem // oldest first; pending[head:] are waiting
	head    int
	open    map[string]*pendingItem // per mergeable kind, the pending event new ones merge into
	tokens  float64
	last    time.Time
	rate    float64
	out     func(trakkar.Event, logPos)
	now     func() time.Time
}

// pendingItem is an event waiting for budget, with the text merged into it so
// far and the log position of the last line it carries.
type pendingItem struct {
	ev    trakkar.Event
	text  strings.Builder
	runes int
	tools []any // for merged tool events: every call's name and summary
	n     int   // events merged into it
	pos   logPos
}

const defaultEventRate = 4

func newCoalescer(rate int, out func(trakkar.Event, logPos)) *coalescer {
	if rate <= 0 {
		rate = defaultEventRate
	}
	c := &coalescer{rate: float64(rate), tokens: float64(rate), out: out, now: time.Now, open: map[string]*pendingItem{}}
	c.last = c.now()
	return c
}

func (c *coalescer) add(ev trakkar.Event, pos logPos) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refillLocked()
	if c.head == len(c.pending) && c.tokens >= 1 {
		// Within budget and nothing waiting: pass it through untouched.
		c.tokens--
		c.out(ev, pos)
		return
	}
	c.queueLocked(ev, pos)
	c.flushLocked(false)
}

// queueLocked merges ev into the newest pending event of its kind (prose and
// tool calls may pass each other, as fewer events matter more than strict
// interleaving within a budget window) when the result fits an event, and
// queues it on its own otherwise.
func (c *coalescer) queueLocked(ev trakkar.Event, pos logPos) {
	runes := utf8.RuneCountInString(ev.Text)
	if !mergeable(ev.Type) {
		// Nothing later merges into an event before this one: status and
		// errors keep their place, and so does the last word after them.
		clear(c.open)
		c.pending = append(c.pending, &pendingItem{ev: ev, runes: runes, n: 1, pos: pos})
		return
	}
	sep := separator(ev.Type)
	if p := c.open[ev.Type]; p != nil && p.runes+len(sep)+runes <= trakkar.MaxEventText {
		if p.n == 1 {
			p.text.WriteString(p.ev.Text)
			if ev.Type == trakkar.EventTool {
				p.tools = toolList(p.ev)
			}
		}
		p.text.WriteString(sep)
		p.text.WriteString(ev.Text)
		p.runes += len(sep) + runes
		if ev.Type == trakkar.EventTool {
			p.tools = append(p.tools, toolList(ev)...)
		}
		p.n++
		p.pos = p.pos.join(pos)
		return
	}
	p := &pendingItem{ev: ev, runes: runes, n: 1, pos: pos}
	c.pending = append(c.pending, p)
	c.open[ev.Type] = p
}

// run releases pending events as the budget refills, until ctx ends.
func (c *coalescer) run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.mu.Lock()
			c.refillLocked()
			c.flushLocked(false)
			c.mu.Unlock()
		}
	}
}

// close hands over everything still pending, merged, ignoring the budget.
func (c *coalescer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refillLocked()
	c.flushLocked(true)
}

func (c *coalescer) refillLocked() {
	now := c.now()
	c.tokens = min(c.rate, c.tokens+now.Sub(c.last).Seconds()*c.rate)
	c.last = now
}

// flushLocked hands over the oldest pending events the budget allows (all of
// them when all is set).
func (c *coalescer) flushLocked(all bool) {
	for c.head < len(c.pending) && (all || c.tokens >= 1) {
		p := c.pending[c.head]
		c.pending[c.head] = nil
		c.head++
		if c.open[p.ev.Type] == p {
			delete(c.open, p.ev.Type)
		}
		c.tokens--
		c.out(p.event(), p.pos)
	}
	c.tokens = max(c.tokens, 0)
	switch {
	case c.head == len(c.pending):
		c.pending, c.head = c.pending[:0], 0
	case c.head > 1024 && c.head*2 > len(c.pending):
		// Reclaim the sent front now and then, not on every event.
		c.pending = append(c.pending[:0], c.pending[c.head:]...)
		c.head = 0
	}
}

// event is the merged event.
func (p *pendingItem) event() trakkar.Event {
	if p.n == 1 {
		return p.ev
	}
	ev := p.ev
	ev.Text = p.text.String()
	if ev.Type == trakkar.EventTool {
		ev.Data = map[string]any{"name": "multiple", "summary": firstLine(p.ev.Text) + " …", "tools": p.tools}
	}
	return ev
}

// mergeable kinds; status and error events always stand alone.
func mergeable(t string) bool {
	return t == trakkar.EventMessage || t == trakkar.EventTool || t == trakkar.EventLog
}

func separator(t string) string {
	if t == trakkar.EventMessage {
		return "\n\n"
	}
	return "\n"
}

func toolList(ev trakkar.Event) []any {
	if l, ok := ev.Data["tools"].([]any); ok {
		return append([]any(nil), l...)
	}
	return []any{map[string]any{"name": ev.Data["name"], "summary": ev.Text}}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

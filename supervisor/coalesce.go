package supervisor

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// coalescer keeps a chatty agent from flooding the task: at most rate events a
// second reach the shipper. Over the budget, pending events of the same kind are
// merged (prose joined, tool calls listed) instead of dropped, and close hands
// over everything left, so the last word before completion is never lost.
type coalescer struct {
	mu      sync.Mutex
	pending []item
	tokens  float64
	last    time.Time
	rate    float64
	out     func(trakkar.Event, logPos)
	now     func() time.Time
}

// item is an event with the log position of the last line it carries.
type item struct {
	ev  trakkar.Event
	pos logPos
}

const defaultEventRate = 4

func newCoalescer(rate int, out func(trakkar.Event, logPos)) *coalescer {
	if rate <= 0 {
		rate = defaultEventRate
	}
	c := &coalescer{rate: float64(rate), tokens: float64(rate), out: out, now: time.Now}
	c.last = c.now()
	return c
}

func (c *coalescer) add(ev trakkar.Event, pos logPos) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, item{ev, pos})
	c.flushLocked(false)
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
			c.flushLocked(false)
			c.mu.Unlock()
		}
	}
}

// close hands over everything still pending, merged, ignoring the budget.
func (c *coalescer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked(true)
}

func (c *coalescer) flushLocked(all bool) {
	now := c.now()
	c.tokens = min(c.rate, c.tokens+now.Sub(c.last).Seconds()*c.rate)
	c.last = now
	if len(c.pending) == 0 {
		return
	}
	budget := int(c.tokens)
	if !all && budget <= 0 {
		return
	}
	if all || len(c.pending) > budget {
		c.pending = mergeAdjacent(c.pending)
	}
	if !all && len(c.pending) > budget {
		c.pending = foldByType(c.pending)
	}
	n := len(c.pending)
	if !all && n > budget {
		n = budget
	}
	for _, it := range c.pending[:n] {
		c.out(it.ev, it.pos)
	}
	c.tokens -= float64(n)
	c.pending = append(c.pending[:0], c.pending[n:]...)
}

// mergeable kinds; status and error events always stand alone.
func mergeable(t string) bool {
	return t == trakkar.EventMessage || t == trakkar.EventTool || t == trakkar.EventLog
}

func mergeAdjacent(evs []item) []item {
	out := make([]item, 0, len(evs))
	for _, it := range evs {
		if n := len(out); n > 0 {
			if m, ok := mergeItems(out[n-1], it); ok {
				out[n-1] = m
				continue
			}
		}
		out = append(out, it)
	}
	return out
}

func mergeItems(a, b item) (item, bool) {
	ev, ok := merge(a.ev, b.ev)
	if !ok {
		return a, false
	}
	return item{ev, a.pos.join(b.pos)}, true
}

// foldByType merges every pending prose, tool and log event into the first of
// its kind: within one budget window, fewer events matter more than strict
// interleaving.
func foldByType(evs []item) []item {
	out := make([]item, 0, len(evs))
	first := map[string]int{}
	for _, it := range evs {
		t := it.ev.Type
		if i, ok := first[t]; ok && mergeable(t) {
			if m, ok := mergeItems(out[i], it); ok {
				out[i] = m
				continue
			}
		}
		if _, seen := first[t]; !seen {
			first[t] = len(out)
		}
		out = append(out, it)
	}
	return out
}

func merge(a, b trakkar.Event) (trakkar.Event, bool) {
	if a.Type != b.Type || !mergeable(a.Type) {
		return a, false
	}
	sep := "\n\n"
	switch a.Type {
	case trakkar.EventTool:
		sep = "\n"
	case trakkar.EventLog:
		sep = "\n"
	}
	text := a.Text + sep + b.Text
	if len([]rune(text)) > trakkar.MaxEventText {
		return a, false
	}
	m := a
	m.Text = text
	if a.Type == trakkar.EventTool {
		m.Data = map[string]any{"name": "multiple", "summary": firstLine(a.Text) + " …", "tools": append(toolList(a), toolList(b)...)}
	} else if a.Data != nil || b.Data != nil {
		m.Data = a.Data
	}
	return m, true
}

func toolList(ev trakkar.Event) []any {
	if l, ok := ev.Data["tools"].([]any); ok {
		return l
	}
	return []any{map[string]any{"name": ev.Data["name"], "summary": ev.Text}}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

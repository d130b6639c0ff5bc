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
	pending []trakkar.Event
	tokens  float64
	last    time.Time
	rate    float64
	out     func(trakkar.Event)
	now     func() time.Time
}

const defaultEventRate = 4

func newCoalescer(rate int, out func(trakkar.Event)) *coalescer {
	if rate <= 0 {
		rate = defaultEventRate
	}
	c := &coalescer{rate: float64(rate), tokens: float64(rate), out: out, now: time.Now}
	c.last = c.now()
	return c
}

func (c *coalescer) add(ev trakkar.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, ev)
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
	for _, ev := range c.pending[:n] {
		c.out(ev)
	}
	c.tokens -= float64(n)
	c.pending = append(c.pending[:0], c.pending[n:]...)
}

// mergeable kinds; status and error events always stand alone.
func mergeable(t string) bool {
	return t == trakkar.EventMessage || t == trakkar.EventTool || t == trakkar.EventLog
}

func mergeAdjacent(evs []trakkar.Event) []trakkar.Event {
	out := make([]trakkar.Event, 0, len(evs))
	for _, ev := range evs {
		if n := len(out); n > 0 {
			if m, ok := merge(out[n-1], ev); ok {
				out[n-1] = m
				continue
			}
		}
		out = append(out, ev)
	}
	return out
}

// foldByType merges every pending prose, tool and log event into the first of
// its kind: within one budget window, fewer events matter more than strict
// interleaving.
func foldByType(evs []trakkar.Event) []trakkar.Event {
	out := make([]trakkar.Event, 0, len(evs))
	first := map[string]int{}
	for _, ev := range evs {
		if i, ok := first[ev.Type]; ok && mergeable(ev.Type) {
			if m, ok := merge(out[i], ev); ok {
				out[i] = m
				continue
			}
		}
		if _, seen := first[ev.Type]; !seen {
			first[ev.Type] = len(out)
		}
		out = append(out, ev)
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

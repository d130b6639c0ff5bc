package supervisor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func TestCoalescerRateAndNothingLost(t *testing.T) {
	cases := []struct {
		name  string
		kinds []string
	}{
		{"chatty prose", repeat(trakkar.EventMessage, 300)},
		{"alternating prose and tools", alternate(trakkar.EventMessage, trakkar.EventTool, 200)},
		{"errors between prose", append(repeat(trakkar.EventMessage, 50), trakkar.EventError, trakkar.EventMessage)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(0, 0)}
			var got []trakkar.Event
			co := newCoalescer(4, func(ev trakkar.Event, _ logPos) { got = append(got, ev) })
			co.now = clk.now
			co.last = clk.t
			// All events arrive within one second.
			for i, k := range c.kinds {
				co.add(trakkar.Event{Type: k, Text: fmt.Sprintf("%s-%d", k, i)}, logPos{})
			}
			if len(got) > 4 {
				t.Fatalf("%d events passed within the first second, budget is 4", len(got))
			}
			clk.t = clk.t.Add(time.Second)
			co.close()
			all := joinTexts(got)
			for i, k := range c.kinds {
				if want := fmt.Sprintf("%s-%d", k, i); !strings.Contains(all, want+"\n") && !strings.HasSuffix(all, want) {
					t.Fatalf("event %q lost", want)
				}
			}
			for _, ev := range got {
				if len([]rune(ev.Text)) > trakkar.MaxEventText {
					t.Fatalf("merged event longer than the contract allows: %d", len(ev.Text))
				}
			}
			if last := got[len(got)-1]; !strings.Contains(last.Text, fmt.Sprintf("-%d", len(c.kinds)-1)) {
				t.Fatalf("last event %q does not carry the final output", last.Text)
			}
		})
	}
}

func TestCoalescerPassesQuietStreamsThrough(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	var got []trakkar.Event
	co := newCoalescer(4, func(ev trakkar.Event, _ logPos) { got = append(got, ev) })
	co.now = clk.now
	co.last = clk.t
	for i := 0; i < 10; i++ {
		co.add(trakkar.Event{Type: trakkar.EventTool, Text: fmt.Sprintf("Read f%d.go", i), Data: map[string]any{"name": "Read"}}, logPos{})
		clk.t = clk.t.Add(time.Second)
	}
	if len(got) != 10 {
		t.Fatalf("one event a second must pass unmerged, got %d", len(got))
	}
	if got[3].Data["name"] != "Read" {
		t.Fatalf("data changed: %v", got[3].Data)
	}
}

func TestCoalescerMergesToolsIntoAList(t *testing.T) {
	var got []trakkar.Event
	co := newCoalescer(1, func(ev trakkar.Event, _ logPos) { got = append(got, ev) })
	co.tokens = 0
	co.add(trakkar.Event{Type: trakkar.EventTool, Text: "Read a.go", Data: map[string]any{"name": "Read"}}, logPos{At: time.Unix(1, 0)})
	co.add(trakkar.Event{Type: trakkar.EventTool, Text: "Edit b.go", Data: map[string]any{"name": "Edit"}}, logPos{At: time.Unix(2, 0)})
	co.close()
	if len(got) != 1 || got[0].Text != "Read a.go\nEdit b.go" {
		t.Fatalf("got %+v", got)
	}
	if tools, _ := got[0].Data["tools"].([]any); len(tools) != 2 {
		t.Fatalf("tools list %v", got[0].Data)
	}
}

func repeat(k string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = k
	}
	return out
}

func alternate(a, b string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = a
		if i%2 == 1 {
			out[i] = b
		}
	}
	return out
}

func joinTexts(evs []trakkar.Event) string {
	var parts []string
	for _, ev := range evs {
		parts = append(parts, ev.Text)
	}
	return strings.Join(parts, "\n")
}

func TestCoalescerMergeLimits(t *testing.T) {
	cases := []struct {
		name      string
		line      string
		n         int
		wantCount int // events handed over by close, after the first passes
	}{
		// 1000 runes of 2 bytes: three fit 4000 runes with their separators, four do not.
		{"multi-byte runes counted as runes", strings.Repeat("é", 1000), 7, 3},
		{"short ASCII lines fill one event", strings.Repeat("a", 9), 300, 1},
		{"a line longer than an event stands alone", strings.Repeat("x", trakkar.MaxEventText+5), 3, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(0, 0)}
			var got []trakkar.Event
			co := newCoalescer(1, func(ev trakkar.Event, _ logPos) { got = append(got, ev) })
			co.now = clk.now
			co.last = clk.t
			co.tokens = 0
			for i := 0; i < c.n; i++ {
				co.add(trakkar.Event{Type: trakkar.EventLog, Text: c.line}, logPos{N: int64(i + 1)})
			}
			if len(got) != 0 {
				t.Fatalf("%d events passed without budget", len(got))
			}
			co.close()
			if len(got) != c.wantCount {
				t.Fatalf("close handed over %d events, want %d", len(got), c.wantCount)
			}
			lines := 0
			for _, ev := range got {
				if n := len([]rune(ev.Text)); n > trakkar.MaxEventText && !strings.Contains(c.name, "longer") {
					t.Fatalf("merged event of %d runes", n)
				}
				lines += strings.Count(ev.Text, "\n") + 1
			}
			if lines != c.n {
				t.Fatalf("%d lines handed over, want %d", lines, c.n)
			}
		})
	}
}

func TestCoalescerKeepsOrderAroundStatus(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	var got []trakkar.Event
	var pos []logPos
	co := newCoalescer(1, func(ev trakkar.Event, p logPos) { got = append(got, ev); pos = append(pos, p) })
	co.now = clk.now
	co.last = clk.t
	co.tokens = 0
	in := []trakkar.Event{
		{Type: trakkar.EventMessage, Text: "m1"},
		{Type: trakkar.EventTool, Text: "t1", Data: map[string]any{"name": "Read"}},
		{Type: trakkar.EventMessage, Text: "m2"},
		{Type: trakkar.EventStatus, Text: "s"},
		{Type: trakkar.EventMessage, Text: "m3"},
		{Type: trakkar.EventTool, Text: "t2", Data: map[string]any{"name": "Edit"}},
	}
	for i, ev := range in {
		co.add(ev, logPos{N: int64(i + 1)})
	}
	// A refill lets the oldest event go; the rest wait for close.
	clk.t = clk.t.Add(time.Second)
	co.add(trakkar.Event{Type: trakkar.EventMessage, Text: "m4"}, logPos{N: 7})
	co.close()
	want := []string{"m1\n\nm2", "t1", "s", "m3\n\nm4", "t2"}
	if len(got) != len(want) {
		t.Fatalf("got %d events %q, want %q", len(got), joinTexts(got), want)
	}
	for i, w := range want {
		if got[i].Text != w {
			t.Fatalf("event %d is %q, want %q (all: %q)", i, got[i].Text, w, joinTexts(got))
		}
	}
	if pos[0].N != 3 || pos[3].N != 7 {
		t.Fatalf("positions %v: a merged event ends at its last line", pos)
	}
	if got[1].Data["name"] != "Read" {
		t.Fatalf("a lone tool call keeps its data: %v", got[1].Data)
	}
}

// BenchmarkCoalescerLine measures one line of a flood while lines are
// pending: the cost per line must not grow with the backlog.
func BenchmarkCoalescerLine(b *testing.B) {
	for _, pending := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("pending=%d", pending), func(b *testing.B) {
			clk := &fakeClock{t: time.Unix(0, 0)}
			co := newCoalescer(4, func(trakkar.Event, logPos) {})
			co.now = clk.now
			co.last = clk.t
			co.tokens = 0
			kinds := []string{trakkar.EventMessage, trakkar.EventTool, trakkar.EventLog}
			line := func(i int) trakkar.Event {
				k := kinds[i%len(kinds)]
				ev := trakkar.Event{Type: k, Text: fmt.Sprintf("line %d of a chatty agent, with some words in it", i)}
				if k == trakkar.EventTool {
					ev.Data = map[string]any{"name": "Read"}
				}
				return ev
			}
			for i := 0; i < pending; i++ {
				co.add(line(i), logPos{N: int64(i)})
			}
			evs := make([]trakkar.Event, 1024)
			for i := range evs {
				evs[i] = line(pending + i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%64 == 0 {
					// A token every 64 lines: one event goes out, the backlog stays.
					clk.t = clk.t.Add(250 * time.Millisecond)
				}
				co.add(evs[i%len(evs)], logPos{N: int64(pending + i)})
			}
		})
	}
}

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

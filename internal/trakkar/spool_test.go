package trakkar

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// memoryHighWater is the most events the shipper ever held in memory.
func (s *Shipper) memoryHighWater() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memHigh
}

// flushSpoolWrites pushes buffered spool lines to the file, as a refill would.
func (s *Shipper) flushSpoolWrites(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.sp.flushLocked(); err != nil {
		t.Fatalf("flush spool: %v", err)
	}
}

// memPoster is an in-process stand-in for the events endpoint with the
// contract's semantics (store each seq once, ack the highest contiguous seq).
// While down it fails in the ways an outage does: refused connections, 5xx,
// timeouts, and answers lost after the events were stored.
type memPoster struct {
	mu           sync.Mutex
	down         bool
	calls        int
	failures     int
	stored       []Event
	received     int
	lastAck      int64 // highest ack returned to the shipper
	resentAcked  int   // events sent again after an ack covering them
	differs      int   // a resent event differed from the stored copy
	maxBatchSent int
}

func (p *memPoster) PostEvents(_ context.Context, _ string, evs []Event) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.maxBatchSent = max(p.maxBatchSent, len(evs))
	for _, ev := range evs {
		if ev.Seq <= p.lastAck {
			p.resentAcked++
		}
	}
	if p.down {
		p.failures++
		switch p.failures % 4 {
		case 0:
			return 0, fmt.Errorf("post events: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
		case 1:
			return 0, &APIError{Status: 503, Code: "unavailable", Message: "down"}
		case 2:
			return 0, fmt.Errorf("post events: %w", context.DeadlineExceeded)
		}
		p.store(evs) // stored, but the answer never arrives
		return 0, &APIError{Status: 502, Message: "bad gateway"}
	}
	acked := p.store(evs)
	p.lastAck = max(p.lastAck, acked)
	return acked, nil
}

func (p *memPoster) store(evs []Event) int64 {
	for _, ev := range evs {
		p.received++
		have := int64(len(p.stored))
		switch {
		case ev.Seq <= have:
			old := p.stored[ev.Seq-1]
			if old.Text != ev.Text || old.Type != ev.Type || !old.At.Equal(ev.At) {
				p.differs++
			}
		case ev.Seq == have+1:
			p.stored = append(p.stored, ev)
		}
	}
	return int64(len(p.stored))
}

func (p *memPoster) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

func (p *memPoster) failureCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures
}

func (p *memPoster) storedTexts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.stored))
	for i, ev := range p.stored {
		if ev.Seq != int64(i+1) {
			return append(out[:i], fmt.Sprintf("<seq %d at index %d>", ev.Seq, i))
		}
		out[i] = ev.Text
	}
	return out
}

// fakeClock advances a fixed step per reading: events then span simulated
// time without the test sleeping.
func fakeClock(start time.Time, step time.Duration) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * step) }
}

func spoolFile(t *testing.T, dir string) string {
	t.Helper()
	p, err := SpoolPath(dir, runID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func spoolSeqs(t *testing.T, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open spool: %v", err)
	}
	defer f.Close()
	var seqs []int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("spool line %q: %v", sc.Text(), err)
		}
		seqs = append(seqs, ev.Seq)
	}
	return seqs
}

func assertNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool %s still exists (stat err %v)", path, err)
	}
}

func TestShipperSpillsThroughLongOutage(t *testing.T) {
	const (
		n         = 20_000
		duringOut = 15_000 // the rest is added while the backlog drains
		maxMemory = 1000
		minFails  = 20
	)
	p := &memPoster{down: true}
	dir := t.TempDir()
	start := time.Date(2025, 5, 6, 7, 0, 0, 0, time.UTC)
	// 30ms of simulated time per event: the events span a 10-minute outage,
	// fifteen times the memory cap spills to disk while it lasts.
	s := NewShipper(p, runID, ShipperOptions{
		Interval: time.Millisecond, MaxMemory: maxMemory, SpoolDir: dir,
		Now: fakeClock(start, 30*time.Millisecond),
	})
	stop := runShipper(t, s)
	defer stop()

	for i := range duringOut {
		s.Add(Event{Type: EventLog, Text: fmt.Sprintf("line %d", i)})
	}
	waitFor(t, 20*time.Second, "the outage to fail requests", func() bool { return p.failureCount() >= minFails })
	if got := s.Pending(); got != duringOut {
		t.Fatalf("Pending = %d during the outage, want %d", got, duringOut)
	}
	if fi, err := os.Stat(spoolFile(t, dir)); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool during the outage: %v, %v", fi, err)
	}

	p.setDown(false)
	for i := duringOut; i < n; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprintf("line %d", i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	stop()

	texts := p.storedTexts()
	if len(texts) != n {
		t.Fatalf("stored %d events, want %d (last: %q)", len(texts), n, texts[len(texts)-1])
	}
	for i, txt := range texts {
		if want := fmt.Sprintf("line %d", i); txt != want {
			t.Fatalf("stored[%d] = %q, want %q", i, txt, want)
		}
	}
	p.mu.Lock()
	span := p.stored[n-1].At.Sub(p.stored[0].At)
	resent, differs, received, maxBatch := p.resentAcked, p.differs, p.received, p.maxBatchSent
	p.mu.Unlock()
	if span < 10*time.Minute-time.Second {
		t.Errorf("events span %v of simulated time, want 10m", span)
	}
	if resent != 0 || differs != 0 {
		t.Errorf("%d events resent after their ack, %d resent with other content", resent, differs)
	}
	if maxBatch > MaxEventsPerRequest {
		t.Errorf("a batch held %d events", maxBatch)
	}
	if hw := s.memoryHighWater(); hw != maxMemory {
		t.Errorf("memory held at most %d events, want the cap %d (never more)", hw, maxMemory)
	}
	if s.Dropped() != 0 || s.Pending() != 0 || s.Acked() != n {
		t.Errorf("Dropped = %d, Pending = %d, Acked = %d", s.Dropped(), s.Pending(), s.Acked())
	}
	assertNoFile(t, spoolFile(t, dir))
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	t.Logf("%d failed requests, %d events received for %d stored", p.failureCount(), received, n)
}

func TestShipperSpoolRemovedAfterDelivery(t *testing.T) {
	f := newFakeEvents(t)
	var down atomic.Bool
	down.Store(true)
	f.decide = func(int) verdict {
		if down.Load() {
			return fail503
		}
		return accept
	}
	dir := t.TempDir()
	path := spoolFile(t, dir)
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: 5 * time.Millisecond, MaxMemory: 10, SpoolDir: dir})
	stop := runShipper(t, s)
	defer stop()
	for i := 1; i <= 100; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	waitFor(t, 5*time.Second, "a failed send", func() bool { _, _, _, fl, _ := f.snapshot(runID); return fl > 0 })
	s.flushSpoolWrites(t)
	seqs := spoolSeqs(t, path)
	if len(seqs) != 90 || seqs[0] != 11 || seqs[89] != 100 {
		t.Fatalf("spool holds %d events %v…, want seq 11..100", len(seqs), seqs[:min(len(seqs), 3)])
	}

	down.Store(false)
	flush(t, s)
	stored, _, _, _, _ := f.snapshot(runID)
	if len(stored) != 100 {
		t.Fatalf("stored %d, want 100", len(stored))
	}
	assertContiguous(t, stored, 1)
	for i, ev := range stored {
		if ev.Text != fmt.Sprint(i+1) {
			t.Fatalf("stored[%d].Text = %q", i, ev.Text)
		}
	}
	assertNoFile(t, path)

	// Spilling again after the cleanup starts a fresh file.
	down.Store(true)
	for i := 101; i <= 115; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	s.flushSpoolWrites(t)
	if seqs := spoolSeqs(t, path); len(seqs) != 5 || seqs[0] != 111 {
		t.Fatalf("second spill holds %v, want 111..115", seqs)
	}
	down.Store(false)
	flush(t, s)
	stored, _, _, _, _ = f.snapshot(runID)
	assertContiguous(t, stored, 1)
	if len(stored) != 115 || stored[114].Text != "115" {
		t.Fatalf("stored %d events after the second outage", len(stored))
	}
	assertNoFile(t, path)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestShipperCloseKeepsSpoolWithPending(t *testing.T) {
	p := &memPoster{down: true}
	dir := t.TempDir()
	path := spoolFile(t, dir)
	s := NewShipper(p, runID, ShipperOptions{Interval: time.Hour, MaxMemory: 10, SpoolDir: dir})
	for i := 1; i <= 30; i++ {
		if seq := s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)}); seq != int64(i) {
			t.Fatalf("Add #%d returned seq %d", i, seq)
		}
	}
	if s.Pending() != 30 {
		t.Fatalf("Pending = %d, want 30", s.Pending())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	seqs := spoolSeqs(t, path)
	if len(seqs) != 20 || seqs[0] != 11 || seqs[19] != 30 {
		t.Fatalf("kept spool holds %v, want seq 11..30", seqs)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("second Close removed the spool: %v", err)
	}

	// Spooled events cannot be sent any more: Flush says so instead of spinning.
	p.setDown(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Flush(ctx)
	if !errors.Is(err, errShipperClosed) {
		t.Fatalf("Flush after Close = %v", err)
	}
	if s.Acked() != 10 || s.Pending() != 20 {
		t.Errorf("Acked = %d, Pending = %d; want the memory events sent, the spooled ones kept", s.Acked(), s.Pending())
	}
	if got := len(spoolSeqs(t, path)); got != 20 {
		t.Errorf("spool holds %d events after Flush, want 20", got)
	}
}

func TestShipperSpoolUnusable(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (dir, run string)
	}{
		{"dir is a file", func(t *testing.T) (string, string) {
			p := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p, runID
		}},
		{"spool path is a directory", func(t *testing.T) (string, string) {
			dir := t.TempDir()
			if err := os.Mkdir(spoolFile(t, dir), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir, runID
		}},
		{"spool path is a symlink", func(t *testing.T) (string, string) {
			dir := t.TempDir()
			target := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.Symlink(target, spoolFile(t, dir)); err != nil {
				t.Fatal(err)
			}
			return dir, runID
		}},
		{"run id not a file name", func(t *testing.T) (string, string) {
			return t.TempDir(), "../escape"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, run := tt.setup(t)
			f := newFakeEvents(t)
			var down atomic.Bool
			down.Store(true)
			f.decide = func(int) verdict {
				if down.Load() {
					return fail503
				}
				return accept
			}
			s := NewShipper(f.client(t), run, ShipperOptions{Interval: time.Hour, MaxMemory: 5, SpoolDir: dir})
			for i := 1; i <= 8; i++ {
				want := int64(i)
				if i > 5 {
					want = 0 // dropped
				}
				if seq := s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)}); seq != want {
					t.Fatalf("Add #%d returned seq %d, want %d", i, seq, want)
				}
			}
			if s.Dropped() != 3 || s.Pending() != 5 {
				t.Fatalf("Dropped = %d, Pending = %d; want 3 and 5", s.Dropped(), s.Pending())
			}
			down.Store(false)
			flush(t, s)
			s.Add(Event{Type: EventLog, Text: "after"})
			flush(t, s)
			stored, _, _, _, _ := f.snapshot(run)
			assertContiguous(t, stored, 1)
			var texts []string
			for _, ev := range stored {
				texts = append(texts, ev.Text)
			}
			want := "1|2|3|4|5|3 events were dropped while Trakkar was unreachable|after"
			if got := strings.Join(texts, "|"); got != want {
				t.Fatalf("stored %q, want %q", got, want)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestShipperSpoolFull(t *testing.T) {
	p := &memPoster{down: true}
	dir := t.TempDir()
	line := len(`{"seq":12,"at":"2025-05-06T07:00:00.001Z","type":"log","text":"xx"}` + "\n")
	s := NewShipper(p, runID, ShipperOptions{
		Interval: time.Hour, MaxMemory: 4, SpoolDir: dir,
		// Room for a handful of lines; the check reserves 20 seq digits.
		MaxSpoolBytes: int64(6*line + 20),
		Now:           func() time.Time { return time.Date(2025, 5, 6, 7, 0, 0, 1e6, time.UTC) },
	})
	const n = 30
	for i := range n {
		s.Add(Event{Type: EventLog, Text: fmt.Sprintf("%02d", i)})
	}
	dropped := s.Dropped()
	if dropped == 0 || s.Pending()+int(dropped) != n {
		t.Fatalf("Dropped = %d, Pending = %d; want drops past the spool cap", dropped, s.Pending())
	}
	p.setDown(false)
	flush(t, s)
	texts := p.storedTexts()
	kept := n - int(dropped)
	if len(texts) != kept+1 {
		t.Fatalf("stored %d events %q, want %d and a drop notice", len(texts), texts, kept+1)
	}
	for i := range kept {
		if want := fmt.Sprintf("%02d", i); texts[i] != want {
			t.Fatalf("stored[%d] = %q, want %q", i, texts[i], want)
		}
	}
	if want := fmt.Sprintf("%d events were dropped while Trakkar was unreachable", dropped); texts[kept] != want {
		t.Errorf("notice = %q, want %q", texts[kept], want)
	}
	assertNoFile(t, spoolFile(t, dir))
}

func TestShipperSpoolRestart(t *testing.T) {
	p := &memPoster{}
	dir := t.TempDir()
	path := spoolFile(t, dir)
	s1 := NewShipper(p, runID, ShipperOptions{Interval: time.Hour, MaxMemory: 5, SpoolDir: dir})
	for i := 1; i <= 3; i++ {
		s1.Add(Event{Type: EventLog, Text: fmt.Sprintf("first %d", i)})
	}
	flush(t, s1)
	p.setDown(true)
	for i := 4; i <= 20; i++ {
		s1.Add(Event{Type: EventLog, Text: fmt.Sprintf("first %d", i)})
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("spool kept by the first shipper: %v", err)
	}
	// Simulate a crash mid-line on top: the next shipper must start a fresh line.
	before = append(before, `{"seq":21,"at":`...)
	if err := os.WriteFile(path, before, 0o600); err != nil {
		t.Fatal(err)
	}

	// A restarted supervisor resumes after what Trakkar acked.
	p.setDown(false)
	s2 := NewShipper(p, runID, ShipperOptions{Interval: time.Hour, MaxMemory: 2, SpoolDir: dir, StartSeq: s1.Acked()})
	p.setDown(true)
	for i := 1; i <= 10; i++ {
		s2.Add(Event{Type: EventLog, Text: fmt.Sprintf("second %d", i)})
	}
	if s2.Pending() != 10 {
		t.Fatalf("Pending = %d; the old spool must not count", s2.Pending())
	}
	s2.flushSpoolWrites(t)
	grown, _ := os.ReadFile(path)
	if !bytes.HasPrefix(grown, before) || len(grown) <= len(before) {
		t.Fatalf("second shipper did not append after the old content")
	}
	// Its lines start on a fresh line, so the file stays readable line by line.
	tail := grown[bytes.LastIndexByte(before, '\n')+1:]
	lines := strings.Split(strings.TrimSuffix(string(tail), "\n"), "\n")
	if len(lines) != 9 || lines[0] != `{"seq":21,"at":` || !strings.HasPrefix(lines[1], `{"seq":6,`) {
		t.Fatalf("lines after the old content: %q", lines)
	}
	p.setDown(false)
	flush(t, s2)

	texts := p.storedTexts()
	want := []string{"first 1", "first 2", "first 3"}
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("second %d", i))
	}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("stored %q, want %q (the old spool must not be replayed)", texts, want)
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(after, before) {
		t.Fatalf("old spool not restored after delivery (err %v, %d bytes, want %d)", err, len(after), len(before))
	}
}

func TestShipperSpoolCorrupted(t *testing.T) {
	p := &memPoster{down: true}
	dir := t.TempDir()
	path := spoolFile(t, dir)
	s := NewShipper(p, runID, ShipperOptions{Interval: time.Hour, MaxMemory: 10, SpoolDir: dir})
	for i := 1; i <= 30; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	s.flushSpoolWrites(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(raw, []byte(`{"seq":20,`))
	if at < 0 {
		t.Fatal("seq 20 not in the spool")
	}
	copy(raw[at:], "garbage!")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	p.setDown(false)
	flush(t, s) // must end: the lost seqs are taken back, no gap stalls the acks
	s.Add(Event{Type: EventLog, Text: "after"})
	flush(t, s)
	texts := p.storedTexts()
	var want []string
	for i := 1; i <= 19; i++ {
		want = append(want, fmt.Sprint(i))
	}
	want = append(want, "11 events were dropped while Trakkar was unreachable", "after")
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("stored %q, want %q", texts, want)
	}
	if s.Dropped() != 11 || s.Pending() != 0 {
		t.Errorf("Dropped = %d, Pending = %d", s.Dropped(), s.Pending())
	}
	assertNoFile(t, path)
}

func TestShipperSpoolWriteFails(t *testing.T) {
	p := &memPoster{down: true}
	dir := t.TempDir()
	s := NewShipper(p, runID, ShipperOptions{Interval: time.Hour, MaxMemory: 5, SpoolDir: dir})
	for i := 1; i <= 8; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	// The disk goes away under the buffered lines 6..8.
	s.mu.Lock()
	_ = s.sp.f.Close()
	s.mu.Unlock()
	big := strings.Repeat("€", MaxEventText) // ~12 KB: a few force a write
	for range 20 {
		s.Add(Event{Type: EventLog, Text: big})
	}
	if s.Dropped() != 23 || s.Pending() != 5 {
		t.Fatalf("Dropped = %d, Pending = %d; want 23 and 5", s.Dropped(), s.Pending())
	}
	p.setDown(false)
	flush(t, s)
	texts := p.storedTexts()
	want := "1|2|3|4|5|23 events were dropped while Trakkar was unreachable"
	if got := strings.Join(texts, "|"); got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
	assertNoFile(t, spoolFile(t, dir))
}

func TestShipperSpoolKeepsEventsIntact(t *testing.T) {
	// The same events through memory only and through the spool reach the
	// server identical.
	events := []Event{
		{Type: EventTool, Text: "edit <main.go> & co", Data: map[string]any{"n": 12345678901234567, "f": 1.5, "nested": map[string]any{"ok": true}}},
		{Type: EventMessage, Text: "ünïcode \u2028 \"quoted\"", At: time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))},
		{Type: EventLog, Text: "", Data: map[string]any{}},
	}
	run := func(spool bool) []string {
		p := &memPoster{}
		opts := ShipperOptions{Interval: time.Hour, Now: fakeClock(time.Unix(0, 0).UTC(), time.Second)}
		if spool {
			opts.SpoolDir, opts.MaxMemory = t.TempDir(), 1
		}
		s := NewShipper(p, runID, opts)
		p.setDown(true)
		for _, ev := range events {
			s.Add(ev)
		}
		p.setDown(false)
		flush(t, s)
		var out []string
		for _, ev := range p.stored {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
		return out
	}
	mem, spooled := run(false), run(true)
	if len(mem) != len(events) || strings.Join(mem, "\n") != strings.Join(spooled, "\n") {
		t.Fatalf("memory:\n%s\nspool:\n%s", strings.Join(mem, "\n"), strings.Join(spooled, "\n"))
	}
}

func TestEncodeEventSplicesSeq(t *testing.T) {
	for _, ev := range []Event{{}, {Type: EventLog, Text: "x", Data: map[string]any{"a": 1}}} {
		enc, size := encodeEvent(ev)
		if !bytes.HasPrefix(enc, seqZeroPrefix) {
			t.Fatalf("encoding %s does not start with %s: spool lines would be dropped", enc, seqZeroPrefix)
		}
		ev.Seq = 1<<63 - 1
		widest, _ := json.Marshal(ev)
		if size != len(widest) {
			t.Errorf("size = %d, want %d", size, len(widest))
		}
	}
}

func TestSpoolPath(t *testing.T) {
	tests := []struct {
		run  string
		want string // "" → error
	}{
		{"run_01HX", "/d/run_01HX.events.jsonl"},
		{"a.b-c_D9", "/d/a.b-c_D9.events.jsonl"},
		{"", ""},
		{".hidden", ""},
		{"..", ""},
		{"a/b", ""},
		{"a\\b", ""},
		{"sp ace", ""},
		{strings.Repeat("x", 201), ""},
	}
	for _, tt := range tests {
		got, err := SpoolPath("/d", tt.run)
		if tt.want == "" {
			if err == nil {
				t.Errorf("SpoolPath(%q) = %q, want an error", tt.run, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SpoolPath(%q) = %q, %v; want %q", tt.run, got, err, tt.want)
		}
	}
}

func BenchmarkShipperAddSpilling(b *testing.B) {
	p := &memPoster{down: true}
	s := NewShipper(p, runID, ShipperOptions{Interval: time.Hour, MaxMemory: 1, SpoolDir: b.TempDir(), MaxSpoolBytes: 1 << 40})
	ev := Event{Type: EventTool, Text: "Edit internal/trakkar/shipper.go", Data: map[string]any{"tool": "Edit", "lines": 42}}
	s.Add(ev) // fills memory: every event below spills
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Add(ev)
	}
	b.StopTimer()
	if s.Dropped() != 0 {
		b.Fatalf("Dropped = %d", s.Dropped())
	}
	_ = s.Close()
}

func BenchmarkShipperAddMemory(b *testing.B) {
	p := &memPoster{down: true}
	s := NewShipper(p, runID, ShipperOptions{Interval: time.Hour, MaxBuffer: 1 << 30})
	ev := Event{Type: EventTool, Text: "Edit internal/trakkar/shipper.go", Data: map[string]any{"tool": "Edit", "lines": 42}}
	b.ReportAllocs()
	for b.Loop() {
		s.Add(ev)
	}
}

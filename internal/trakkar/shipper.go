package trakkar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
)

// EventPoster sends one batch of events; *Client satisfies it.
type EventPoster interface {
	PostEvents(ctx context.Context, runID string, evs []Event) (int64, error)
}

// ShipperOptions configures a Shipper.
type ShipperOptions struct {
	Interval time.Duration // batching period, default 1s
	// StatusDelay is how long a status event waits for the ones that follow
	// it closely (container started, agent started), so a lifecycle step
	// costs one request rather than one per line; default 100ms.
	StatusDelay time.Duration
	MaxBuffer   int              // without SpoolDir: max events held unacknowledged, default 10000
	StartSeq    int64            // last seq already acknowledged (0 for a new run); the next event gets StartSeq+1
	Logger      *zap.Logger      // names the run (the shipper adds no run field); nil → zap.NewNop()
	Now         func() time.Time // stamps Event.At; for tests; default time.Now

	// With SpoolDir, memory holds at most MaxMemory unacked events (default
	// 2000; MaxBuffer is ignored) and later ones are appended to
	// SpoolPath(SpoolDir, runID), read back in order as acks free memory.
	// Past MaxSpoolBytes (default 256 MiB), or when the file cannot be
	// written, events are dropped and reported as without a spool.
	MaxMemory     int
	SpoolDir      string
	MaxSpoolBytes int64

	// MaxBackoff caps the wait between retries after failures (default 30s,
	// and at most 30 Intervals).
	MaxBackoff time.Duration

	// After a restart: SentSeq is the highest seq an earlier process recorded
	// as sent (ReadSentSeq), and AckUnknown says StartSeq could not be read
	// from Trakkar. Numbering continues after max(StartSeq, SentSeq), so a seq
	// Trakkar may hold is never given to other content. With AckUnknown the
	// first request reads acked_seq (retried like any send); seqs up to
	// SentSeq that Trakkar lacks are filled one at a time with a notice, since
	// Trakkar acks nothing past a hole.
	SentSeq    int64
	AckUnknown bool
	// Attempt is written into the sent record (with SpoolDir): which attempt
	// sent the seqs it names.
	Attempt int

	// OnResend, when set, hears how many events of a request were sent
	// before (a retry after a failure or a partial ack, or a restart's
	// resend); it is called outside the shipper's lock.
	OnResend func(n int)
	// OnLeaseLost, when set, hears once that Trakkar answered 409
	// lease_lost: the run is another runner's now, and the shipper sends
	// nothing more of it. It is called outside the shipper's lock.
	OnLeaseLost func()
}

const (
	defaultShipInterval  = time.Second
	defaultStatusDelay   = 100 * time.Millisecond
	defaultShipMaxBuffer = 10000
	defaultShipBackoff   = 30 * time.Second
	// batchOverhead is len(`{"events":[]}`).
	batchOverhead = 13
	// maxEventBytes leaves room for the envelope so one event always fits a request.
	maxEventBytes = MaxEventsBytes - 1024
)

// Shipper buffers the events of one run and delivers them to Trakkar in seq
// order, batched, exactly once from the server's view (it dedupes by seq and
// acks the highest contiguous seq; only acked events leave the buffer).
//
// Sending happens on Run's ticks and in Flush; at most one request is in flight.
// Memory holds the oldest unacked events; with a spool, the newer ones wait on
// disk, so seqs are acked+1…memory…spool…next-1 without gaps.
type Shipper struct {
	p           EventPoster
	runID       string
	log         *zap.Logger
	now         func() time.Time
	interval    time.Duration
	memCap      int
	retry       backoff.Policy // wait after failures
	attempt     int
	sentDir     string // where the sent record lives; "" → none
	onResend    func(n int)
	onLeaseLost func()

	sem      chan struct{} // held while a request is in flight; its holder alone reads the spool and removes acked events
	kick     chan struct{} // a status event waits: send soon rather than on the next tick
	statusIn time.Duration // StatusDelay

	mu         sync.Mutex
	buf        []queued // unacked events in memory, ascending contiguous seq from acked+1
	sp         *spool   // the events after buf
	memHigh    int      // most events ever held in buf
	closed     bool
	next       int64 // seq of the next event
	acked      int64
	dropped    int64 // total dropped because the buffer was full
	unreported int64 // dropped since the last notice event
	lastNotice int64 // seq of the last drop notice
	gone       bool
	goneErr    error
	failures   int
	retryAt    time.Time

	// Restart bookkeeping (see ShipperOptions.SentSeq).
	confirmed bool      // acked was read from Trakkar, not assumed
	earlier   int64     // seqs up to this may have been sent by an earlier process
	gapAt     time.Time // stamp of the notices that fill seqs lost in a restart
	// sentRecorded is the seq in the sent record; only the sem holder uses it.
	sentRecorded int64
	// posted is the highest seq ever put in a request (or recorded sent by an
	// earlier process); only the sem holder uses it.
	posted     int64
	sentWarned bool
}

type queued struct {
	ev   Event
	size int // JSON bytes, upper bound
}

// NewShipper returns a shipper for runID. Call Run in a goroutine and Flush
// before completing the run.
func NewShipper(p EventPoster, runID string, opts ShipperOptions) *Shipper {
	s := &Shipper{
		p:           p,
		runID:       runID,
		log:         opts.Logger,
		now:         opts.Now,
		interval:    opts.Interval,
		statusIn:    opts.StatusDelay,
		memCap:      opts.MaxBuffer,
		attempt:     opts.Attempt,
		sentDir:     opts.SpoolDir,
		onResend:    opts.OnResend,
		onLeaseLost: opts.OnLeaseLost,
		sem:         make(chan struct{}, 1),
		kick:        make(chan struct{}, 1),
	}
	start, sent := max(opts.StartSeq, 0), max(opts.SentSeq, 0)
	s.next = max(start, sent) + 1
	s.acked = start
	s.earlier = sent
	s.sentRecorded = sent
	s.posted = sent
	s.confirmed = !opts.AckUnknown
	if !s.confirmed {
		s.acked = max(start, sent) // assumed until the first answer
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	// The caller's logger names the run already; adding run_id again would
	// repeat the key in every line.
	s.log = s.log.Named("shipper")
	if s.now == nil {
		s.now = time.Now
	}
	if s.interval <= 0 {
		s.interval = defaultShipInterval
	}
	if s.statusIn <= 0 {
		s.statusIn = min(defaultStatusDelay, s.interval)
	}
	if s.memCap <= 0 {
		s.memCap = defaultShipMaxBuffer
	}
	maxWait := opts.MaxBackoff
	if maxWait <= 0 {
		maxWait = defaultShipBackoff
	}
	// Interval doubling up to 30 Intervals, never past MaxBackoff (even one
	// below Interval), in the upper half so a retry is never much earlier.
	s.retry = backoff.Policy{Base: s.interval, Max: min(30*s.interval, maxWait), Jitter: backoff.Equal}
	if opts.SpoolDir != "" {
		s.memCap = opts.MaxMemory
		if s.memCap <= 0 {
			s.memCap = defaultShipMaxMemory
		}
	}
	s.sp = newSpool(opts.SpoolDir, runID, opts.MaxSpoolBytes, s.log)
	return s
}

// Add queues ev without blocking. It assigns Seq (contiguous), sets At when
// zero, and truncates Text to MaxEventText runes. ev.Data is deep-copied, so the
// caller may reuse its map. When memory and spool are full the event is dropped
// and counted; a notice event reports the gap once there is room again. After a
// 410 everything is dropped silently.
//
// It returns the seq given to ev, 0 when ev was dropped. A seq of a spooled
// event is given again to a later event if a disk error loses the spool before
// it was sent (Dropped and the notice count it).
func (s *Shipper) Add(ev Event) int64 {
	ev, enc, size := s.prepare(ev)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return 0
	}
	if s.unreported > 0 {
		s.appendNoticeLocked()
	}
	if !s.enqueueLocked(ev, enc, size) {
		s.dropped++
		s.unreported++
		return 0
	}
	if ev.Type == EventStatus {
		// Lifecycle steps are few and people wait for them; the flood of
		// prose and tool calls keeps its batches.
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return s.next - 1
}

// enqueueLocked numbers ev and keeps it in memory, or in the spool when memory
// is full or older events wait there. false means no room: ev got no seq.
func (s *Shipper) enqueueLocked(ev Event, enc []byte, size int) bool {
	if s.sp.count == 0 && len(s.buf) < s.memCap {
		ev.Seq = s.next
		s.next++
		s.buf = append(s.buf, queued{ev: ev, size: size})
		s.memHigh = max(s.memHigh, len(s.buf))
		return true
	}
	lost, err := s.sp.appendLocked(s.next, enc)
	s.unnumberLocked(lost)
	if err != nil {
		return false
	}
	s.next++
	return true
}

// unnumberLocked takes back the seqs of the newest n events, lost from the
// spool before anything was sent with them, and reports them as dropped.
func (s *Shipper) unnumberLocked(n int) {
	if n <= 0 {
		return
	}
	s.next -= int64(n)
	s.dropped += int64(n)
	s.unreported += int64(n)
}

// prepare normalizes ev outside the lock and returns its encoding with Seq 0
// and its encoded size with the widest possible seq.
func (s *Shipper) prepare(ev Event) (Event, []byte, int) {
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	if ev.Type == "" {
		ev.Type = EventLog
	}
	ev.Text = truncateText(ev.Text)
	if ev.Data != nil {
		data, err := copyData(ev.Data)
		if err != nil {
			s.log.Warn("dropping event data that is not valid JSON", zap.String("type", ev.Type), zap.Error(err))
		}
		ev.Data = data
	}
	enc, size := encodeEvent(ev)
	if size > maxEventBytes {
		s.log.Warn("dropping event data larger than a request", zap.String("type", ev.Type), zap.Int("bytes", size))
		ev.Data = nil
		enc, size = encodeEvent(ev)
	}
	return ev, enc, size
}

// encodeEvent returns ev encoded with Seq 0 and its size with the widest seq
// (19 digits instead of 1).
func encodeEvent(ev Event) ([]byte, int) {
	ev.Seq = 0
	b, err := json.Marshal(ev)
	if err != nil {
		// Unreachable: Data is JSON-clean after copyData.
		return nil, maxEventBytes + 1
	}
	return b, len(b) + 18
}

// copyData deep-copies data through JSON, which also guarantees it encodes
// later. Numbers keep their literal form.
func copyData(data map[string]any) (map[string]any, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// truncateText makes s valid UTF-8 of at most MaxEventText runes, ending in "…"
// when cut.
func truncateText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= MaxEventText {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxEventText-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// appendNoticeLocked queues an event reporting the drops since the last one,
// when there is room for it.
func (s *Shipper) appendNoticeLocked() {
	ev := Event{
		At:   s.now(),
		Type: EventError,
		Text: fmt.Sprintf("%d events were dropped while Trakkar was unreachable", s.unreported),
		Data: map[string]any{"dropped": s.unreported},
	}
	enc, size := encodeEvent(ev)
	if !s.enqueueLocked(ev, enc, size) {
		return
	}
	s.lastNotice = s.next - 1
	s.log.Warn("events were dropped because the buffer was full", zap.Int64("dropped", s.unreported))
	s.unreported = 0
}

// Run sends buffered events once per Interval (backing off after failures)
// until ctx is done, and StatusDelay after a status event is added. A tick
// drains the backlog it found, one request at a time, so a status event goes
// out with everything before it, in seq order.
func (s *Shipper) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	var soon <-chan time.Time // armed by the first status event of a step
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick(ctx)
		case <-s.kick:
			if soon == nil {
				soon = time.After(s.statusIn)
			}
		case <-soon:
			soon = nil
			s.tick(ctx)
			// What was pending went with the status: the next batch is a
			// full interval away, not a tick that finds almost nothing.
			t.Reset(s.interval)
		}
	}
}

func (s *Shipper) tick(ctx context.Context) {
	s.mu.Lock()
	skip := s.gone || (s.confirmed && s.pendingLocked() == 0) || time.Now().Before(s.retryAt)
	s.mu.Unlock()
	if skip {
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return // a Flush is sending
	}
	defer func() { <-s.sem }()
	// Events added while a request is out wait for the next tick: looping
	// until nothing is pending would send a request per line for a chatty
	// agent whenever a request takes longer than the gap between its lines.
	s.mu.Lock()
	target := s.next - 1
	s.mu.Unlock()
	for ctx.Err() == nil {
		progress, err := s.sendOnce(ctx)
		if ctx.Err() != nil || s.Gone() {
			return
		}
		if err == nil && !progress && s.pending() > 0 {
			err = fmt.Errorf("trakkar acknowledged no new events (acked_seq %d)", s.Acked())
		}
		if err != nil {
			s.noteFailure(err)
			return
		}
		s.mu.Lock()
		s.failures = 0
		// Seqs can be given back (a lost spool), so target may pass next.
		done := s.confirmed && s.acked >= min(target, s.next-1)
		s.mu.Unlock()
		if done || s.pending() == 0 {
			return
		}
	}
}

func (s *Shipper) noteFailure(err error) {
	s.mu.Lock()
	s.failures++
	d := s.backoff(s.failures)
	s.retryAt = time.Now().Add(d)
	n := s.failures
	s.mu.Unlock()
	s.log.Warn("sending events failed; keeping them for a retry",
		zap.Error(err), zap.Int("failures", n), zap.Duration("retry_in", d), zap.Int("buffered", s.pending()))
}

// backoff is the wait after the given number of failures in a row.
func (s *Shipper) backoff(failures int) time.Duration {
	return s.retry.Delay(failures)
}

// errNoProgress: Trakkar answered but acknowledged nothing new.
var errNoProgress = errors.New("no new events acknowledged")

// errShipperClosed: spooled events cannot be read back after Close.
var errShipperClosed = errors.New("shipper closed with events spooled")

// sendOnce posts the oldest unacked batch. progress reports that the acked seq
// advanced. The caller holds sem.
func (s *Shipper) sendOnce(ctx context.Context) (progress bool, err error) {
	s.refill()
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return false, s.goneErr
	}
	probe := !s.confirmed // an empty batch only reads acked_seq
	var batch []Event
	if !probe {
		batch = s.batchLocked()
	}
	stuck := len(batch) == 0 && s.sp.count > 0 && s.sp.closed
	s.mu.Unlock()
	if stuck && !probe {
		return false, errShipperClosed
	}
	if len(batch) == 0 && !probe {
		return false, nil
	}
	if len(batch) > 0 {
		s.recordSent(batch[len(batch)-1].Seq)
		s.countResent(batch)
	}

	acked, err := s.p.PostEvents(ctx, s.runID, batch)

	lostNow := false
	defer func() { // after the unlock below
		if lostNow && s.onLeaseLost != nil {
			s.onLeaseLost()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	if probe && IsRefused(err) {
		// A Trakkar that does not take the empty read: the sent record is
		// the best knowledge there is.
		s.log.Warn("trakkar refuses the acked_seq read; continuing after the recorded seq", zap.Error(err))
		s.confirmed = true
		return true, nil
	}
	if err != nil {
		if IsGone(err) {
			s.log.Info("run is gone; dropping its events", zap.Int("buffered", s.pendingLocked()))
			s.gone, s.goneErr = true, err
			s.buf, s.unreported = nil, 0
			if err := s.sp.resetLocked(); err != nil {
				s.log.Warn("removing the event spool failed", zap.Error(err))
			}
			s.removeSentLocked()
		} else if IsLeaseLost(err) && !s.gone {
			// No resend changes that answer, and the contract says report
			// nothing more. What is buffered stays for Close, as for a lease
			// the heartbeats found lost, and the sent record is kept: should
			// the run come back to this runner, its seqs are not reused.
			s.log.Warn("trakkar says the run is another runner's; sending nothing more of it", zap.Int("unsent", s.pendingLocked()))
			s.gone, s.goneErr = true, err
			lostNow = true
		}
		return false, err
	}
	// Seqs up to earlier may be held from an earlier process: an ack of them
	// is believable though this process did not send them.
	last := s.earlier
	if len(batch) > 0 {
		last = max(last, batch[len(batch)-1].Seq)
	}
	if probe {
		return s.confirmLocked(min(acked, last), acked), nil
	}
	if acked > last {
		// Never trust an ack for events not sent: that would lose them.
		s.log.Warn("trakkar acknowledged events that were not sent", zap.Int64("acked_seq", acked), zap.Int64("last_sent", last))
		acked = last
	}
	if acked < s.acked && acked < s.earlier {
		// Seqs an earlier process sent are missing though assumed stored:
		// fill them (batchLocked); the events after them stay buffered.
		s.log.Warn("events sent before the restart are missing at trakkar; filling the gap with notices",
			zap.Int64("acked_seq", acked), zap.Int64("sent_before", s.earlier))
		s.acked = acked
		return true, nil
	}
	if acked < s.acked {
		s.log.Warn("trakkar acknowledged fewer events than before", zap.Int64("acked_seq", acked), zap.Int64("previous", s.acked))
		return false, nil
	}
	if acked < last {
		s.log.Debug("trakkar stored part of the batch; resending the rest", zap.Int64("acked_seq", acked), zap.Int64("last_sent", last))
	}
	n := 0
	for n < len(s.buf) && s.buf[n].ev.Seq <= acked {
		n++
	}
	s.buf = slices.Delete(s.buf, 0, n)
	progress = acked > s.acked
	s.acked = acked
	if s.sp.done(acked) {
		if err := s.sp.resetLocked(); err != nil {
			s.log.Warn("removing the event spool failed", zap.Error(err))
		}
	}
	if s.unreported > 0 {
		s.appendNoticeLocked()
	}
	return progress, nil
}

// confirmLocked takes the acked_seq read after a restart as the truth. A
// lower one than assumed leaves seqs up to earlier to fill.
func (s *Shipper) confirmLocked(acked, told int64) bool {
	if told > acked {
		s.log.Warn("trakkar holds events past this runner's record; new events up to its acked_seq will be dropped as duplicates",
			zap.Int64("acked_seq", told), zap.Int64("recorded", s.earlier))
	}
	s.confirmed = true
	if acked < s.earlier {
		s.log.Warn("events sent before the restart are missing at trakkar; filling the gap with notices",
			zap.Int64("acked_seq", acked), zap.Int64("sent_before", s.earlier))
	}
	s.log.Info("read acknowledged events", zap.Int64("acked_seq", acked))
	s.acked = acked
	return true
}

// fillerLocked is the notice sent in place of seq, lost with an earlier
// process's memory. It is the same on every resend.
func (s *Shipper) fillerLocked(seq int64) Event {
	if s.gapAt.IsZero() {
		s.gapAt = s.now()
	}
	return Event{Seq: seq, At: s.gapAt, Type: EventError,
		Text: fmt.Sprintf("Event %d was lost when the runner restarted", seq)}
}

// recordSent makes the sent record cover seq before it goes out. Failing to
// write it is logged once and does not hold events back: a restart that can
// read acked_seq does not need it. The caller holds sem.
func (s *Shipper) recordSent(seq int64) {
	if s.sentDir == "" || seq <= s.sentRecorded {
		return
	}
	if err := writeSentSeq(s.sentDir, s.runID, s.attempt, seq); err != nil {
		if !s.sentWarned {
			s.sentWarned = true
			s.log.Warn("recording the sent seq failed; a restart that cannot read acked_seq may reuse seqs", zap.Error(err))
		}
		return
	}
	s.sentRecorded = seq
}

func (s *Shipper) removeSentLocked() {
	if s.sentDir == "" {
		return
	}
	if err := removeSentSeq(s.sentDir, s.runID); err != nil {
		s.log.Warn("removing the sent record failed", zap.Error(err))
	}
}

// refill moves the oldest spooled events into memory, as many as fit. The
// file is read outside the lock so Add never waits for it; the caller holds
// sem, so nobody else reads the spool or moves the read offset meanwhile, and
// Add appends to the spool (not memory) while it has events.
func (s *Shipper) refill() {
	s.mu.Lock()
	if s.gone || s.sp.count == 0 || len(s.buf) >= s.memCap || s.sp.closed {
		s.mu.Unlock()
		return
	}
	f, from, to, lost := s.sp.readableLocked()
	s.unnumberLocked(lost)
	want := min(s.memCap-len(s.buf), s.sp.count)
	first := s.next - int64(s.sp.count)
	s.mu.Unlock()
	if want <= 0 || f == nil {
		return
	}

	evs, used, err := readSpool(f, from, to, want, first)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sp.closed {
		return // Close kept the file for whoever comes next; nothing was taken
	}
	s.buf = append(s.buf, evs...)
	s.memHigh = max(s.memHigh, len(s.buf))
	s.sp.consumedLocked(len(evs), used)
	if err != nil {
		s.unnumberLocked(s.sp.discardLocked(err))
	}
}

// batchLocked copies the oldest events that fit one request. While seqs an
// earlier process sent are missing at Trakkar, it is the notice for the first
// of them alone: Trakkar's answer then skips those it holds, so none of them
// is sent again with other content.
func (s *Shipper) batchLocked() []Event {
	if s.acked < s.earlier {
		return []Event{s.fillerLocked(s.acked + 1)}
	}
	total := batchOverhead
	var out []Event
	for i, q := range s.buf {
		if i == MaxEventsPerRequest {
			break
		}
		add := q.size
		if i > 0 {
			add++ // comma
		}
		if i > 0 && total+add > MaxEventsBytes {
			break
		}
		total += add
		out = append(out, q.ev)
	}
	return out
}

// Flush sends everything added so far and waits until Trakkar acknowledged it,
// however long that takes. It returns nil when all is acked; an error for
// which IsGone(err) is true when the run is gone (events are dropped) or
// IsLeaseLost(err) when it is another runner's (nothing more is sent); one
// for which IsRefused(err) is true when Trakkar refuses them for good; or
// ctx's error. It may be called after Run returned.
func (s *Shipper) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.next - 1
	s.mu.Unlock()
	unacked := func(err error) error {
		return fmt.Errorf("flush events: %d events unacknowledged: %w", target-s.Acked(), err)
	}
	retry := backoff.Retry{Policy: s.retry,
		Notify: func(attempt int, _ time.Duration, err error) {
			if errors.Is(err, errNoProgress) {
				return // an answer, just not a new ack: nothing to warn about
			}
			s.log.Warn("flushing events failed; retrying", zap.Error(err), zap.Int("failures", attempt))
		}}
	// An attempt sends until everything is acked or a send fails; a failure
	// after some progress starts the backoff afresh.
	err := retry.Do(ctx, func(ctx context.Context, _ int) error {
		progressed := false
		for {
			s.mu.Lock()
			gone, goneErr, acked := s.gone, s.goneErr, s.acked
			// A drop notice added meanwhile reports lost events; include it. Seqs
			// are taken back when spooled events are lost to a disk error.
			target = min(max(target, s.lastNotice), s.next-1)
			s.mu.Unlock()
			if gone {
				return backoff.Permanent(fmt.Errorf("flush events: %w", goneErr))
			}
			if s.Confirmed() && acked >= target {
				return nil
			}
			select {
			case s.sem <- struct{}{}:
			case <-ctx.Done():
				return backoff.Permanent(unacked(ctx.Err()))
			}
			progress, err := s.sendOnce(ctx)
			<-s.sem
			switch {
			case err == nil && progress:
				progressed = true
				continue
			case errors.Is(err, errShipperClosed) || IsRefused(err):
				// Waiting cannot help: the same request would get the same answer.
				return backoff.Permanent(unacked(err))
			case ctx.Err() != nil:
				return backoff.Permanent(unacked(ctx.Err()))
			case s.Gone():
				continue // reported at the top
			case err == nil:
				err = errNoProgress
			}
			if progressed {
				return backoff.Progressed(err)
			}
			return err
		}
	})
	if err != nil && ctx.Err() != nil && !IsGone(err) {
		return unacked(ctx.Err())
	}
	return err
}

// countResent tells OnResend how many events of batch were in a request
// before. The caller holds sem.
func (s *Shipper) countResent(batch []Event) {
	n := 0
	for _, ev := range batch {
		if ev.Seq <= s.posted {
			n++
		}
	}
	s.posted = max(s.posted, batch[len(batch)-1].Seq)
	if n > 0 && s.onResend != nil {
		s.onResend(n)
	}
}

// Spooled counts the unacked events waiting in the spool file, not in memory.
func (s *Shipper) Spooled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sp.count
}

// Acked is the highest seq Trakkar acknowledged.
func (s *Shipper) Acked() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Gone reports that Trakkar answered 410, or 409 lease_lost; further events
// are dropped silently.
func (s *Shipper) Gone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone
}

// Pending counts events added but not acked yet, in memory and spooled.
func (s *Shipper) Pending() int {
	return s.pending()
}

func (s *Shipper) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingLocked()
}

func (s *Shipper) pendingLocked() int {
	n := len(s.buf) + s.sp.count
	if s.confirmed && s.acked < s.earlier {
		n += int(s.earlier - s.acked)
	}
	return n
}

// Confirmed reports that Acked was read from Trakkar (always, unless
// AckUnknown was set and no answer came yet).
func (s *Shipper) Confirmed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// Close ends spooling: it removes the spool file when everything was acked
// and keeps it otherwise (the events still in memory are not in it). Call it
// after Flush and after Run returned; spooled events cannot be sent after
// Close. It is idempotent and does not wait for a request in flight.
func (s *Shipper) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.confirmed && s.pendingLocked() == 0 {
		s.removeSentLocked()
	}
	lost, err := s.sp.closeLocked(s.pendingLocked() == 0)
	s.unnumberLocked(lost)
	if err != nil {
		return fmt.Errorf("close shipper: %w", err)
	}
	return nil
}

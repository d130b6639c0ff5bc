package supervisor

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
	"github.com/trakkar/trakkar-agent/internal/logkey"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// run is the supervisor's state for one claimed run.
type run struct {
	runReporter // masks and sends its events, saves its record
	claim       trakkar.Claim
	log         *zap.Logger
	ship        *trakkar.Shipper
	state       atomic.Value // heartbeat state string
	stopOnce    sync.Once
	stopReq     chan struct{} // a person pressed Stop
	lostOnce    sync.Once
	lost        chan struct{} // the lease is gone: report nothing more
	ended       chan struct{} // closed once drive is done with the run
	lease       leaseState    // when Trakkar last confirmed the lease
	rec         runRecord     // persisted so a restarted supervisor can continue
	pos         *seqMap       // log position of each shipped worker event
	lastBeat    atomic.Int64  // unix ns of the last acknowledged heartbeat (the claim before)
	last        *lastEvent    // the latest event, kept for `trakkar-agent status`
	// bg holds the goroutines the run's steps start beside the pipeline (the
	// egress proxy's follower): drive joins them before the last events go.
	bg sync.WaitGroup
	// setupDone, when set, ends the run's place among the setups once its
	// container started (admission.go).
	setupDone func()
	// completing: the completion is being sent, so a heartbeat answered
	// "gone" hears of that completion, not of a lost lease.
	completing atomic.Bool
}

func (r *run) setupEnded() {
	if r.setupDone != nil {
		r.setupDone()
	}
}

func (r *run) requestStop() { r.stopOnce.Do(func() { close(r.stopReq) }) }
func (r *run) markLost()    { r.lostOnce.Do(func() { close(r.lost) }) }

func (r *run) isLost() bool {
	select {
	case <-r.lost:
		return true
	default:
		return false
	}
}

func (r *run) stopRequested() bool {
	select {
	case <-r.stopReq:
		return true
	default:
		return false
	}
}

func (r *run) setState(s string) { r.state.Store(s) }
func (r *run) getState() string  { return r.state.Load().(string) }

// seqStart is where a run's events continue: acked is Trakkar's acked_seq
// (assumed when unknown), sent the highest seq an earlier process recorded as
// sent.
type seqStart struct {
	acked, sent int64
	unknown     bool
}

// attemptStart is where a claimed run's events begin. Seqs belong to the run,
// not to an attempt: Trakkar keeps the earlier attempts' events and drops a
// seq given again as a duplicate, so a re-queued run continues after them
// (Trakkar's acked_seq, or this host's record of what it sent, if higher).
// False when the run is no longer ours.
func (s *Supervisor) attemptStart(ctx context.Context, c trakkar.Claim) (seqStart, bool) {
	if c.Run.Attempt <= 1 {
		return seqStart{}, true
	}
	log := s.log.With(zap.String(logkey.RunID, c.Run.ID), zap.String(logkey.TaskKey, c.Task.Key), zap.Int(logkey.Attempt, c.Run.Attempt))
	start, err := s.eventStart(ctx, log, c)
	if err != nil {
		log.Warn("run no longer ours before it started", zap.Error(err))
		return seqStart{}, false
	}
	return start, true
}

func (s *Supervisor) newRun(c trakkar.Claim, start seqStart) *run {
	r := &run{
		runReporter: s.reporter(c.Task),
		claim:       c,
		stopReq:     make(chan struct{}),
		lost:        make(chan struct{}),
		ended:       make(chan struct{}),
		log: s.log.With(zap.String(logkey.RunID, c.Run.ID), zap.String(logkey.TaskID, c.Task.ID),
			zap.String(logkey.TaskKey, c.Task.Key), zap.Int(logkey.Attempt, c.Run.Attempt)),
	}
	r.rec = runRecord{Claim: c, Phase: phasePreparing, ClaimedAt: time.Now().UTC()}
	r.lease.seconds.Store(int64(c.LeaseSeconds))
	r.setState(trakkar.StatePreparing)
	// The spool and the sent record live in the state folder, which a dry
	// run leaves untouched.
	stateDir := s.stateDirFor(c.Task)
	if s.cfg.DryRun {
		stateDir = ""
	}
	r.ship = trakkar.NewShipper(s.api, c.Run.ID, trakkar.ShipperOptions{
		Logger: r.log.Named("events"), StartSeq: start.acked, SentSeq: start.sent, AckUnknown: start.unknown,
		SpoolDir: stateDir, Attempt: max(c.Run.Attempt, 1), MaxBackoff: s.cfg.EventRetryMax,
		OnResend: s.metrics.EventsResent,
		// Events answered as another runner's tell what a heartbeat would,
		// maybe first (or alone, from a Trakkar that only checks there).
		OnLeaseLost: func() {
			r.log.Warn("lease lost: trakkar refused the run's events as another runner's; stopping the run and reporting nothing more")
			r.markLost()
		},
	})
	r.last = &lastEvent{}
	if !s.cfg.DryRun {
		r.pos = openSeqMap(s.seqMapPath(r))
		r.last.path = filepath.Join(stateDir, lastEventFile)
	}
	return r
}

// awaitOlderAttempt returns once no older attempt of c's run is going in this
// process. Such an attempt has lost its lease: Trakkar re-queued the run, and
// this runner claimed it again. Heartbeats of the old attempt would still be
// answered (same run, same runner), so it is told here; it stops its
// container and reports nothing more. It shares the task's worktree, job
// folder and state files, so the new attempt starts only once it has ended,
// heartbeating its own claim meanwhile. False when ctx ended first, or when
// this process already drives this attempt of the run.
func (s *Supervisor) awaitOlderAttempt(ctx context.Context, c trakkar.Claim) bool {
	s.mu.Lock()
	old := s.byRun[c.Run.ID]
	s.mu.Unlock()
	if old == nil {
		return true
	}
	if old.claim.Run.Attempt >= c.Run.Attempt {
		// The claim repeats one this process already drives (claims by one
		// runner id are idempotent): a second drive would run the agent
		// again beside the first, with the same seqs.
		old.log.Warn("this attempt is already being worked on here; not starting it twice")
		return false
	}
	old.log.Warn("this runner claimed a newer attempt of the run; this attempt has lost its lease",
		zap.Int("newer_attempt", c.Run.Attempt))
	old.markLost()
	beat := time.NewTicker(heartbeatPeriod(c.LeaseSeconds))
	defer beat.Stop()
	for {
		select {
		case <-old.ended:
			return true
		case <-ctx.Done():
			return false
		case <-beat.C:
			// Failures are the run's own heartbeats' to judge, once it starts.
			_, _ = s.api.Heartbeat(ctx, c.Run.ID, trakkar.StatePreparing)
		}
	}
}

// track makes r the attempt of its run this process works on.
func (s *Supervisor) track(r *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byRun == nil {
		s.byRun = map[string]*run{}
	}
	s.byRun[r.claim.Run.ID] = r
}

func (s *Supervisor) untrack(r *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byRun[r.claim.Run.ID] == r {
		delete(s.byRun, r.claim.Run.ID)
	}
}

// drive runs body with the run's event shipper and heartbeats going, then
// delivers the events and the completion body decided on.
func (s *Supervisor) drive(ctx context.Context, r *run, body func() *trakkar.Completion) {
	defer close(r.ended)
	s.track(r)
	defer s.untrack(r)
	started, res := time.Now(), newResult(r)
	defer s.report(res, started) // deferred: a run that panics is reported too
	defer s.observeRun(r)()
	shipCtx, stopShip := context.WithCancel(ctx)
	shipDone := make(chan struct{})
	go func() { defer close(shipDone); r.ship.Run(shipCtx) }()

	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); s.heartbeat(hbCtx, r) }()

	comp := body()
	completing := time.Now()
	r.bg.Wait() // nothing may add events once the flush below starts
	if comp != nil && !r.isLost() && ctx.Err() == nil {
		r.rec.Completion = comp
		r.setPhase(phaseCompleting)
	}

	// Events first: after completion Trakkar refuses further events, so the
	// completion waits for every one of them to be acknowledged, however long
	// Trakkar is away. Heartbeats go on meanwhile.
	if n := r.ship.Pending(); n > 0 && comp != nil && ctx.Err() == nil {
		r.log.Info("waiting for trakkar to acknowledge the run's events before completing", zap.Int("pending", n))
	}
	flushCtx, cancel := deliveryContext(ctx, r)
	ferr := r.ship.Flush(flushCtx)
	if ferr != nil && !r.isLost() {
		r.log.Warn("events not fully delivered", zap.Error(ferr))
	}
	cancel()
	stopShip()
	<-shipDone
	r.pos.close()
	r.last.close()

	// Only a lost lease or an abort ends the wait early, and then nothing is
	// completed; a gone run needs no completion either. Events Trakkar
	// refuses for good (a 4xx) do not hold the outcome back.
	completed := comp != nil && (ferr == nil || trakkar.IsRefused(ferr)) && !r.isLost() && ctx.Err() == nil
	if completed {
		r.completing.Store(true)
		s.complete(ctx, r, *comp)
		s.timed(PhaseComplete, completing)
	}
	// The workspace goes after Trakkar has the outcome, never before: the
	// person sees the PR while the files are deleted.
	if comp != nil && r.rec.Discard && ctx.Err() == nil {
		s.discardWorkspace(ctx, r)
	}
	s.settle(res, r, comp, completed, ctx.Err() != nil)
	if !completed {
		lvl := zap.WarnLevel
		if res.Outcome == OutcomeDryRun {
			lvl = zap.InfoLevel
		}
		r.log.Log(lvl, "run ended without a completion", zap.String(logkey.Outcome, res.Outcome), zap.String(logkey.Reason, s.redact.String(res.Reason)))
	}
	if ctx.Err() == nil && (comp != nil || r.isLost()) {
		r.setPhase(phaseDone)
		_ = r.ship.Close()
		_ = os.Remove(s.seqMapPath(r))
	}
	stopHB()
	<-hbDone
}

// deliveryContext bounds the wait for the run's events: it ends when the lease
// is lost or the supervisor aborts, never on a timer. When already aborting,
// the buffer gets a short chance; a restarted runner delivers the rest.
func deliveryContext(ctx context.Context, r *run) (context.Context, context.CancelFunc) {
	if ctx.Err() != nil {
		return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	}
	dctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-r.lost:
			cancel()
		case <-dctx.Done():
		}
	}()
	return dctx, cancel
}

// dryRun shows what would happen and leaves the run unfinished: without
// heartbeats its lease lapses and Trakkar queues it again for a real runner.
func (s *Supervisor) dryRun(r *run) {
	t := r.claim.Task
	branch := "(derived at run time)"
	if b, err := s.branchFor(t); err == nil {
		branch = b
	}
	r.log.Info("dry run: task read",
		zap.String("title", s.redact.String(t.Title)), zap.String("branch", branch),
		zap.Int("description_bytes", len(t.Description)), zap.Int("messages", len(t.Messages)),
		zap.String("image", s.cfg.Image), zap.String("provider", s.cfg.Provider))
	r.status("Dry run: read task %q; would work on branch %s with image %s. No container started, nothing pushed.",
		t.Title, branch, s.cfg.Image)
}

// complete reports the outcome, retrying until Trakkar acknowledges it.
func (s *Supervisor) complete(ctx context.Context, r *run, c trakkar.Completion) {
	if c.Summary != "" {
		c.Summary = s.redact.String(c.Summary)
	}
	if c.Error != nil {
		e := s.redact.String(*c.Error)
		c.Error = &e
	}
	retry := backoff.Retry{Policy: retryPolicy(30 * time.Second),
		Notify: func(attempt int, _ time.Duration, err error) {
			// "retry", not "attempt": the run's logger carries the run's attempt.
			r.log.Warn("completion failed; retrying", zap.Error(err), zap.Int("retry", attempt))
		}}
	err := retry.Do(ctx, func(ctx context.Context, _ int) error {
		_, err := s.api.Complete(ctx, r.claim.Run.ID, c)
		if err != nil && (trakkar.IsGone(err) || trakkar.IsLeaseLost(err) || ctx.Err() != nil) {
			return backoff.Permanent(err)
		}
		return err
	})
	switch {
	case err == nil:
		fields := []zap.Field{zap.String(logkey.Outcome, c.Outcome)}
		if c.Error != nil {
			fields = append(fields, zap.String(logkey.Reason, *c.Error))
		}
		if c.PullRequest != nil {
			fields = append(fields, zap.String(logkey.PRURL, c.PullRequest.URL))
		}
		r.log.Info("run completed", fields...)
	case trakkar.IsGone(err) || trakkar.IsLeaseLost(err):
		r.log.Warn("run was finalised elsewhere; completion dropped", zap.Error(err))
	default:
		r.log.Error("completion not delivered before shutdown", zap.Error(err))
	}
}

func (s *Supervisor) heartbeat(ctx context.Context, r *run) {
	lease := r.claim.LeaseSeconds
	for {
		// Each beat is bounded by the lease: a request stuck on a dead link
		// must not hold back the next beat for the client's whole retry
		// budget, and an answer later than the lease renews nothing useful.
		// The client's own retries within that bound smooth over a blip.
		period := heartbeatPeriod(lease)
		beatCtx, cancel := context.WithTimeout(ctx, 3*period) // about the lease
		sent := time.Now()
		reply, err := s.api.Heartbeat(beatCtx, r.claim.Run.ID, r.getState())
		cancel()
		switch {
		case err == nil:
			r.lease.confirm(sent, reply.LeaseSeconds)
			r.lastBeat.Store(time.Now().UnixNano())
			s.noteLease(reply.LeaseSeconds)
			if reply.StopRequested {
				r.requestStop()
			}
			if reply.LeaseSeconds > 0 {
				lease = reply.LeaseSeconds
			}
		case trakkar.IsGone(err) && r.completing.Load():
			r.log.Debug("heartbeat: the run is closed by its completion")
			return
		case trakkar.IsLeaseLost(err) || trakkar.IsGone(err):
			r.log.Warn("lease lost: stopping the run and reporting nothing more", zap.Error(err))
			r.markLost()
			return
		case ctx.Err() != nil:
			return
		default:
			r.log.Warn("heartbeat failed", zap.Error(err))
		}
		s.sleep(ctx, max(period-time.Since(sent), 10*time.Millisecond))
		if ctx.Err() != nil {
			return
		}
	}
}

// heartbeatPeriod is lease/3 with ±10% jitter so many runs do not beat in step.
func heartbeatPeriod(leaseSeconds int) time.Duration {
	if leaseSeconds <= 0 {
		leaseSeconds = 60
	}
	base := time.Duration(leaseSeconds) * time.Second / 3
	j := base / 10
	return base - j + time.Duration(float64(2*j)*rand.Float64())
}

func oneLine(s string, maxLen int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return s
}

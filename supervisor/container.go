package supervisor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// lineSink turns one line of a container stream (with the engine's timestamp
// still on it) into events, handing each to add.
type lineSink func(line []byte, add func(trakkar.Event, logPos))

// runOpts says how runContainer follows one started container.
type runOpts struct {
	what     string // "container" or "verify container", for the log
	since    time.Time
	deadline time.Duration // 0: none
	// record keeps each shipped event's log position, so a restarted
	// supervisor can follow the container again from Trakkar's last ack.
	record bool
	// watch, when set, stops the container once the workspace passes
	// --max-workspace-mb (watchdog.go).
	watch          *workspace
	stdout, stderr lineSink
}

// containerEnd is how a container run ended.
type containerEnd struct {
	end      ending // endExited unless Stop, drain, lease loss, abort or the watchdog cut it short
	timedOut bool   // the deadline passed and the container was stopped
	exit     docker.ExitStatus
	at       time.Time // when it exited or was stopped
}

// runContainer follows a started container's output into the task's events
// until it exits, stops it (with the grace period) on the deadline, Stop,
// drain, lease loss or the watchdog, and returns how it ended. On abort it
// leaves the container as it is. It always joins its log follower and
// coalescer before returning, so nothing it started outlives it.
func (s *Supervisor) runContainer(ctx context.Context, r *run, id string, waitCh <-chan docker.WaitResult, o runOpts) (containerEnd, error) {
	log := r.log.With(zap.String("container_id", shortID(id)))
	co := newCoalescer(defaultEventRate, func(ev trakkar.Event, pos logPos) {
		if r.isLost() {
			return
		}
		r.logLifecycle(ev) // the worker's own status and error lines
		seq := r.ship.Add(ev)
		r.last.note(ev)
		if o.record {
			r.pos.record(seq, pos)
		}
	})
	var wg sync.WaitGroup
	coCtx, stopCo := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		co.run(coCtx)
	}()
	stdout := newLineWriter(func(line []byte) { o.stdout(line, co.add) })
	stderr := newLineWriter(func(line []byte) { o.stderr(line, co.add) })
	logsDone := make(chan struct{})
	logCtx, stopLogs := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(logsDone)
		if err := s.rt.LogsSince(logCtx, id, o.since, true, stdout, stderr); err != nil && logCtx.Err() == nil {
			log.Warn("follow "+o.what+" logs", zap.Error(err))
		}
		stdout.Close()
		stderr.Close()
	}()
	// join waits up to patience for the log stream to end by itself (0: stop
	// following at once), then for both goroutines to return.
	joined := false
	join := func(patience time.Duration) {
		if joined {
			return
		}
		joined = true
		if patience > 0 {
			select {
			case <-logsDone:
			case <-time.After(patience):
				log.Warn(o.what + " logs did not end after exit; continuing")
			}
		}
		stopLogs()
		<-logsDone
		stopCo()
		wg.Wait()
	}
	defer join(0)

	var over <-chan struct{}
	var dw *diskWatch
	if o.watch != nil {
		dw = s.watchDisk(ctx, o.watch, log)
		defer dw.stop(ctx, false)
		over = dw.Over()
	}
	var deadline <-chan time.Time
	if o.deadline > 0 {
		timer := time.NewTimer(o.deadline)
		defer timer.Stop()
		deadline = timer.C
	}

	ce := containerEnd{end: endExited}
	var wr docker.WaitResult
	exited := false
	select {
	case wr = <-waitCh:
		exited = true
	case <-deadline:
		ce.timedOut = true
	case <-over:
		ce.end = endDiskFull
	case <-r.stopReq:
		ce.end = endStopped
	case <-s.drainCh:
		ce.end = endDrained
	case <-r.lost:
		ce.end = endLost
	case <-ctx.Done():
		// Aborting: an agent's container stays for a restarted supervisor; a
		// verify container goes with its caller's cleanup.
		return containerEnd{end: endAborted, at: time.Now()}, nil
	}
	if !exited {
		log.Info("stopping "+o.what, zap.Bool("timed_out", ce.timedOut),
			zap.Duration("grace", s.cfg.StopGrace))
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StopGrace+30*time.Second)
		if err := s.rt.Stop(sctx, id, s.cfg.StopGrace); err != nil {
			log.Warn("stop "+o.what, zap.Error(err))
		}
		select {
		case wr = <-waitCh:
		case <-sctx.Done():
			wr.Err = sctx.Err()
		}
		cancel()
	}
	ce.at = time.Now()
	if wr.Err != nil && exited {
		if ctx.Err() != nil {
			return containerEnd{end: endAborted, at: ce.at}, nil
		}
		return ce, fmt.Errorf("wait for %s: %w", o.what, wr.Err)
	}
	ce.exit = wr.Status
	if dw != nil {
		dw.stop(ctx, ce.end == endExited)
		if dw.exceeded() && ce.end == endExited {
			ce.end = endDiskFull
		}
	}
	// Every line the container printed must be shipped before the run is decided.
	join(15 * time.Second)
	co.close()
	return ce, nil
}

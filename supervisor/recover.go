package supervisor

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/logkey"
	"github.com/trakkar/trakkar-agent/internal/sandbox"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// recoverRuns picks up what a previous process of this runner left unfinished:
// it reattaches to containers still running, finishes runs whose container
// exited, re-sends undelivered completions, and removes labelled containers
// that no run owns. Recovered runs take slots like new ones.
func (s *Supervisor) recoverRuns(ctx context.Context) {
	if s.cfg.DryRun {
		return
	}
	containers, err := s.rt.List(ctx, map[string]string{LabelManaged: "true", LabelRunner: s.cfg.Runner.ID})
	if err != nil {
		s.log.Warn("list task containers; nothing recovered", zap.Error(err))
		return
	}
	byRun := map[string]docker.Container{}
	var proxies, verifies []docker.Container
	for _, c := range containers {
		switch c.Labels[LabelRole] {
		case RoleEgress:
			proxies = append(proxies, c)
			continue
		case RoleVerify:
			verifies = append(verifies, c)
			continue
		}
		byRun[c.Labels[LabelRunID]] = c
	}
	recs := s.loadRecords()
	owned := map[string]bool{}
	verifying := map[string]bool{}
	for _, rec := range recs {
		owned[rec.Claim.Run.ID] = true
		verifying[rec.Claim.Run.ID] = rec.Phase == phaseFinishing
	}
	// A verify round cut short is simply run again. A run that verifies again
	// removes its old verify containers itself before it makes the new one;
	// removing them here as well would race with it, and the engine then
	// keeps the name taken while the new container is created.
	for _, c := range verifies {
		if !verifying[c.Labels[LabelRunID]] {
			byRun["orphan-verify-"+c.ID] = c
		}
	}
	// Proxies and networks of runs nobody will continue go with them.
	for _, c := range proxies {
		if !owned[c.Labels[LabelRunID]] {
			byRun["orphan-egress-"+c.ID] = c
		}
	}
	if nets, err := s.rt.ListNetworks(ctx, map[string]string{LabelManaged: "true", LabelRunner: s.cfg.Runner.ID}); err == nil {
		defer func() {
			for _, n := range nets {
				if !owned[n.Labels[LabelRunID]] {
					_ = s.rt.RemoveNetwork(ctx, n.ID)
				}
			}
		}()
	}
	for _, rec := range recs {
		var c *docker.Container
		if found, ok := byRun[rec.Claim.Run.ID]; ok {
			c = &found
			delete(byRun, rec.Claim.Run.ID)
		}
		s.mu.Lock()
		s.active++
		s.recovering[rec.Claim.Run.ID] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func(rec runRecord) {
			defer s.wg.Done()
			defer s.releaseSlot()
			defer func() {
				s.mu.Lock()
				delete(s.recovering, rec.Claim.Run.ID)
				s.mu.Unlock()
			}()
			defer s.survive(s.log.With(zap.String(logkey.RunID, rec.Claim.Run.ID)))
			s.resume(ctx, rec, c)
		}(rec)
	}
	for _, c := range byRun {
		s.log.Info("removing a task container no run owns", zap.String("container_id", shortID(c.ID)),
			zap.String("run_id", c.Labels[LabelRunID]))
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = s.rt.Stop(cctx, c.ID, s.cfg.StopGrace)
		if err := s.rt.Remove(cctx, c.ID); err != nil {
			s.log.Warn("remove orphan container", zap.Error(err))
		}
		cancel()
	}
}

// resume continues one recorded run.
func (s *Supervisor) resume(ctx context.Context, rec runRecord, c *docker.Container) {
	log := s.log.With(zap.String(logkey.RunID, rec.Claim.Run.ID), zap.String(logkey.TaskKey, rec.Claim.Task.Key),
		zap.String("phase", rec.Phase))
	// Claiming again with the same runner id is idempotent: it tells us whether
	// the run is still ours and renews the lease.
	claim, err := s.api.Claim(ctx, rec.Claim.Run.ID, trakkar.Runner(s.cfg.Runner))
	if err != nil {
		log.Warn("run no longer ours; leaving its workspace", zap.Error(err))
		if c != nil {
			s.discardContainer(ctx, c.ID)
		}
		s.markDone(ctx, rec)
		return
	}
	start, err := s.eventStart(ctx, log, claim)
	if err != nil {
		log.Warn("run no longer ours; leaving its workspace", zap.Error(err))
		if c != nil {
			s.discardContainer(ctx, c.ID)
		}
		s.markDone(ctx, rec)
		return
	}
	r := s.newRun(claim, start)
	r.rec = rec
	r.rec.Claim = claim
	log.Info("recovering run", zap.Int64("acked_seq", start.acked), zap.Int64("sent_seq", start.sent),
		zap.Bool("acked_known", !start.unknown), zap.Bool("container", c != nil))
	s.drive(ctx, r, func() *trakkar.Completion {
		ws := s.workspaceFor(r)
		switch rec.Phase {
		case phasePreparing:
			// A container created just before the crash, before the record
			// named it, would clash with the new one's name.
			s.discardRunContainers(ctx, r)
			r.status("Runner restarted; preparing the run again")
			return s.execute(ctx, r)
		case phaseRunning:
			if c == nil {
				return s.finishExited(ctx, r, ws, "the agent's container disappeared while the runner was down")
			}
			if c.State == "created" {
				// Killed between create and start: start it now.
				return s.startCreated(ctx, r, ws, c.ID)
			}
			return s.reattach(ctx, r, ws, c.ID)
		case phaseFinishing:
			r.status("Runner restarted; finishing the run")
			return s.finishExited(ctx, r, ws, "")
		case phaseCompleting:
			return rec.Completion
		}
		return nil
	})
}

// eventStart finds where a recovered run's events continue. Trakkar's
// acked_seq is read with an empty batch; the runner's durable record of the
// highest seq it sent keeps numbering past anything Trakkar may hold, also
// when the read fails, and the shipper then reads acked_seq with its first
// request. An error means the run is no longer ours.
func (s *Supervisor) eventStart(ctx context.Context, log *zap.Logger, claim trakkar.Claim) (seqStart, error) {
	dir := s.stateDirFor(claim.Task)
	var st seqStart
	sent, err := trakkar.ReadSentSeq(dir, claim.Run.ID)
	if err != nil {
		// The log position map names every seq given to the agent's output.
		sent = maxSeqIn(s.seqMapPathFor(claim))
		log.Warn("unreadable sent record; using the event position map", zap.Error(err), zap.Int64("sent_seq", sent))
	}
	st.sent = sent
	acked, err := s.api.PostEvents(ctx, claim.Run.ID, nil)
	switch {
	case err == nil:
		st.acked = acked
	case trakkar.IsGone(err) || trakkar.IsLeaseLost(err):
		return st, err
	default:
		log.Warn("cannot read acknowledged events; continuing after the recorded seq and reading it again with the first send",
			zap.Error(err), zap.Int64("sent_seq", sent))
		st.unknown = true
	}
	return st, nil
}

// reattach follows a container started by a previous process from where
// Trakkar's acknowledged events end.
func (s *Supervisor) reattach(ctx context.Context, r *run, ws *workspace, id string) *trakkar.Completion {
	since := positionFor(s.seqMapPath(r), r.ship.Acked())
	if !since.At.IsZero() {
		since.At = since.At.Add(time.Nanosecond)
	}
	waitCh := make(chan docker.WaitResult, 1)
	go func() {
		st, err := s.rt.Wait(ctx, id)
		waitCh <- docker.WaitResult{Status: st, Err: err}
	}()
	r.status("Runner restarted; following the agent's container again")
	if s.cfg.Network == NetworkAllowlist {
		if ps, err := s.rt.List(ctx, sandbox.Owned(s.cfg.Runner.ID, r.claim.Run.ID, RoleEgress)); err == nil && len(ps) == 1 {
			go s.followEgress(ctx, r, ps[0].ID)
		}
	}
	ar, err := s.supervise(ctx, r, ws, id, waitCh, since)
	if err != nil {
		return s.fail(r, failReason{kind: reasonContainer}, err)
	}
	return s.finish(ctx, r, ws, ar)
}

// finishExited decides a run whose container is gone, from its result file.
func (s *Supervisor) finishExited(ctx context.Context, r *run, ws *workspace, missing string) *trakkar.Completion {
	res := s.resultOf(r, ws)
	if res == nil && missing != "" {
		return s.fail(r, failReason{kind: reasonRecovery, msg: missing}, nil)
	}
	code := workerproto.ExitOK
	if res == nil || res.Outcome != workerproto.OutcomeSucceeded {
		code = workerproto.ExitAgentFailed
	}
	return s.finish(ctx, r, ws, &agentRun{end: endExited, exit: docker.ExitStatus{Code: code}, result: res})
}

// workspaceFor rebuilds the paths of a recorded run's workspace.
func (s *Supervisor) workspaceFor(r *run) *workspace {
	ws := s.workspacePaths(r.claim.Task)
	ws.wt, ws.base = r.rec.Worktree, r.rec.Base
	return ws
}

// removeLeftover removes a container of this run named name, if there is one,
// and reports whether it did. A create that the previous process sent just
// before it died can reach the engine after the restart cleaned up, and then
// holds the run's container name; the name carries the run id, so it is ours.
// createContainer creates spec's container. A container of this run from a
// process that died mid-create can hold the name: the engine finishes such a
// create on its own, possibly after the restarted runner looked for leftovers.
// It is replaced, a few times at most (its removal may still be under way).
func (s *Supervisor) createContainer(ctx context.Context, r *run, spec docker.Spec) (string, error) {
	var id string
	retry := backoff.Retry{Policy: backoff.Policy{Base: 200 * time.Millisecond, Max: 2 * time.Second}, MaxAttempts: 4}
	err := retry.Do(ctx, func(ctx context.Context, _ int) error {
		var err error
		if id, err = s.rt.Create(ctx, spec); err == nil {
			return nil
		}
		if ctx.Err() != nil || !s.removeLeftover(ctx, r, spec.Name) {
			return backoff.Permanent(err)
		}
		return err
	})
	var ex *backoff.ExhaustedError
	if errors.As(err, &ex) {
		err = ex.Err
	}
	return id, err
}

// removeLeftover removes the containers of this run that hold name and says
// whether there were any.
func (s *Supervisor) removeLeftover(ctx context.Context, r *run, name string) bool {
	cs, err := s.rt.List(ctx, sandbox.Owned(s.cfg.Runner.ID, r.claim.Run.ID, ""))
	if err != nil {
		return false
	}
	removed := false
	for _, c := range cs {
		if strings.TrimPrefix(c.Name, "/") == name {
			r.log.Warn("a container of this run from before the restart holds its name; replacing it",
				zap.String("container_id", shortID(c.ID)))
			s.discardContainer(ctx, c.ID)
			removed = true
		}
	}
	return removed
}

func (s *Supervisor) discardContainer(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StopGrace+30*time.Second)
	defer cancel()
	_ = s.rt.Stop(cctx, id, s.cfg.StopGrace)
	if err := s.rt.Remove(cctx, id); err != nil {
		s.log.Warn("remove container of a recovered run", zap.String("container_id", shortID(id)), zap.Error(err))
	}
}

// markDone closes the record of a run that is no longer this runner's. A run
// it had published and completed before the crash (the worktree marked for
// removal, Trakkar now answering "gone") still has its worktree removed: the
// crash came between the completion and the removal.
func (s *Supervisor) markDone(ctx context.Context, rec runRecord) {
	r := &run{runReporter: s.reporter(rec.Claim.Task), claim: rec.Claim, rec: rec, log: s.log}
	if rec.Discard && rec.Worktree.Path != "" {
		s.discardWorkspace(ctx, r)
	}
	r.setPhase(phaseDone)
}

// startCreated starts a container the previous process created but never started.
func (s *Supervisor) startCreated(ctx context.Context, r *run, ws *workspace, id string) *trakkar.Completion {
	r.status("Runner restarted; starting the agent's container")
	waitCh, err := s.rt.Start(ctx, id)
	if err != nil {
		s.removeContainer(ctx, r, id)
		return s.fail(r, failReason{kind: reasonContainer, msg: "start container"}, err)
	}
	ar, err := s.supervise(ctx, r, ws, id, waitCh, logPos{})
	if err != nil {
		return s.fail(r, failReason{kind: reasonContainer}, err)
	}
	return s.finish(ctx, r, ws, ar)
}

// outputAcked waits until Trakkar has acknowledged every event of the run so
// far. Until then the container's log is the only copy of the agent's output,
// so the record must still say running and the container must stay: a runner
// killed meanwhile replays the unacknowledged lines from it on restart. It
// returns false when the supervisor is aborting; a lost lease returns true, as
// nothing more is reported then anyway. The wait ends on a lost lease as the
// completion's does: Trakkar answers a run it re-queued with 409 lease_lost,
// which no resend changes.
func (s *Supervisor) outputAcked(ctx context.Context, r *run) bool {
	if ctx.Err() != nil {
		return false // the container stays; a restarted runner replays its output
	}
	dctx, cancel := deliveryContext(ctx, r)
	defer cancel()
	if err := r.ship.Flush(dctx); err != nil && ctx.Err() == nil && !r.isLost() {
		r.log.Warn("agent output not acknowledged; finishing anyway", zap.Error(err))
	}
	return ctx.Err() == nil
}

// discardRunContainers removes every container of the run and waits until
// the engine no longer lists them: a create cut short by the crash is still
// being cleaned up by the engine, whose remove then answers "already in
// progress" while the name stays taken.
func (s *Supervisor) discardRunContainers(ctx context.Context, r *run) {
	labels := sandbox.Owned(s.cfg.Runner.ID, r.claim.Run.ID, "")
	deadline := time.Now().Add(s.cfg.StopGrace + 30*time.Second)
	for {
		cs, err := s.rt.List(ctx, labels)
		if err != nil {
			r.log.Warn("list the run's old containers", zap.Error(err))
			return
		}
		if len(cs) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.log.Warn("old containers of the run are still there", zap.Int("containers", len(cs)))
			return
		}
		for _, c := range cs {
			s.discardContainer(ctx, c.ID)
		}
		s.sleep(ctx, 200*time.Millisecond)
	}
}

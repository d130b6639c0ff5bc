package supervisor

import (
	"context"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/event"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
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
	var proxies []docker.Container
	for _, c := range containers {
		switch c.Labels[LabelRole] {
		case RoleEgress:
			proxies = append(proxies, c)
			continue
		case RoleVerify:
			// A verify round cut short is simply run again.
			byRun["orphan-verify-"+c.ID] = c
			continue
		}
		byRun[c.Labels[LabelRunID]] = c
	}
	recs := s.loadRecords()
	owned := map[string]bool{}
	for _, rec := range recs {
		owned[rec.Claim.Run.ID] = true
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
		s.mu.Unlock()
		s.wg.Add(1)
		go func(rec runRecord) {
			defer s.wg.Done()
			defer s.releaseSlot()
			defer s.survive(s.log.With(zap.String("run_id", rec.Claim.Run.ID)))
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
	log := s.log.With(zap.String("run_id", rec.Claim.Run.ID), zap.String("task_key", rec.Claim.Task.Key),
		zap.String("phase", rec.Phase))
	// Claiming again with the same runner id is idempotent: it tells us whether
	// the run is still ours and renews the lease.
	claim, err := s.api.Claim(ctx, rec.Claim.Run.ID, trakkar.Runner(s.cfg.Runner))
	if err != nil {
		log.Warn("run no longer ours; leaving its workspace", zap.Error(err))
		if c != nil {
			s.discardContainer(ctx, c.ID)
		}
		s.markDone(rec)
		return
	}
	acked, err := s.api.PostEvents(ctx, rec.Claim.Run.ID, nil)
	if err != nil {
		log.Warn("read acknowledged events", zap.Error(err))
		if trakkar.IsGone(err) || trakkar.IsLeaseLost(err) {
			s.markDone(rec)
			return
		}
	}
	r := s.newRun(claim, acked)
	r.rec = rec
	r.rec.Claim = claim
	log.Info("recovering run", zap.Int64("acked_seq", acked), zap.Bool("container", c != nil))
	s.drive(ctx, r, func() *trakkar.Completion {
		ws := s.workspaceFor(r)
		switch rec.Phase {
		case phasePreparing:
			if c != nil {
				// Created just before the crash, before the record named it.
				s.discardContainer(ctx, c.ID)
			}
			s.status(r, "Runner restarted; preparing the run again")
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
			s.status(r, "Runner restarted; finishing the run")
			return s.finishExited(ctx, r, ws, "")
		case phaseCompleting:
			return rec.Completion
		}
		return nil
	})
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
	s.status(r, "Runner restarted; following the agent's container again")
	if s.cfg.Network == NetworkAllowlist {
		if ps, err := s.rt.List(ctx, map[string]string{LabelRunID: r.claim.Run.ID, LabelRole: RoleEgress}); err == nil && len(ps) == 1 {
			go s.followEgress(ctx, r, ps[0].ID)
		}
	}
	ar, err := s.supervise(ctx, r, ws, id, waitCh, since)
	if err != nil {
		s.emit(r, trakkar.EventError, err.Error(), nil)
		return failed(err.Error())
	}
	return s.finish(ctx, r, ws, ar)
}

// finishExited decides a run whose container is gone, from its result file.
func (s *Supervisor) finishExited(ctx context.Context, r *run, ws *workspace, missing string) *trakkar.Completion {
	res := readResult(ws.outDir)
	if res == nil && missing != "" {
		s.emit(r, trakkar.EventError, missing, nil)
		return failed(missing)
	}
	code := event.ExitOK
	if res == nil || res.Outcome != event.OutcomeSucceeded {
		code = event.ExitAgentFailed
	}
	return s.finish(ctx, r, ws, &agentRun{end: endExited, exit: docker.ExitStatus{Code: code}, result: res})
}

// workspaceFor rebuilds the paths of a recorded run's workspace.
func (s *Supervisor) workspaceFor(r *run) *workspace {
	ws := &workspace{key: s.taskFolder(r.claim.Task), wt: r.rec.Worktree, base: r.rec.Base}
	ws.stateDir = s.stateDirFor(r.claim.Task)
	ws.inDir = filepath.Join(ws.stateDir, "in")
	ws.outDir = filepath.Join(ws.stateDir, "out")
	ws.agentDir = filepath.Join(ws.stateDir, "agent")
	ws.gitDir = filepath.Join(ws.stateDir, "agent-git")
	return ws
}

func (s *Supervisor) discardContainer(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StopGrace+30*time.Second)
	defer cancel()
	_ = s.rt.Stop(cctx, id, s.cfg.StopGrace)
	_ = s.rt.Remove(cctx, id)
}

func (s *Supervisor) markDone(rec runRecord) {
	r := &run{claim: rec.Claim, rec: rec, log: s.log}
	s.setPhase(r, phaseDone)
}

// startCreated starts a container the previous process created but never started.
func (s *Supervisor) startCreated(ctx context.Context, r *run, ws *workspace, id string) *trakkar.Completion {
	s.status(r, "Runner restarted; starting the agent's container")
	waitCh, err := s.rt.Start(ctx, id)
	if err != nil {
		s.removeContainer(ctx, r, id)
		s.emit(r, trakkar.EventError, "start container: "+err.Error(), nil)
		return failed("start container: " + err.Error())
	}
	ar, err := s.supervise(ctx, r, ws, id, waitCh, logPos{})
	if err != nil {
		s.emit(r, trakkar.EventError, err.Error(), nil)
		return failed(err.Error())
	}
	return s.finish(ctx, r, ws, ar)
}

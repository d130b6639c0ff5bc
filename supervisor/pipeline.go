package supervisor

import (
	"context"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// The pipeline of one run. Every run passes these stages in this order, and
// the functions below call them top to bottom:
//
//  1. claim      work: the run's events and heartbeats start (drive)
//  2. workspace  readyWorkspace: the task's worktree and host folders
//  3. agent      runAgent, outcome: the agent's container, supervised to its end
//  4. verify     verifyAndFix: the verify command, with the agent's fix rounds
//  5. publish    publish, verifyVerdict: commit, push and pull request
//  6. complete   drive, complete: the events delivered, then the completion
//
// A stage that decides the run returns its completion and the later stages
// are skipped; drive delivers it. A restarted runner enters the pipeline at
// the stage its record names (recover.go): execute for the workspace, the
// agent's container followed again, finish, or complete.
// The container side of each stage (specs, network, volumes) is
// internal/sandbox's.

// work drives one claimed run from claim to completion.
// setupDone ends the run's place among the setups (admission.go).
func (s *Supervisor) work(ctx context.Context, c trakkar.Claim, setupDone func()) {
	if !s.awaitOlderAttempt(ctx, c) {
		return
	}
	start, ok := s.attemptStart(ctx, c)
	if !ok {
		return
	}
	r := s.newRun(c, start)
	r.setupDone = setupDone
	s.drive(ctx, r, func() *trakkar.Completion {
		r.status("Claimed by runner %s on %s (attempt %d)", s.cfg.Runner.ID, s.cfg.Runner.Hostname, max(c.Run.Attempt, 1))
		if s.cfg.DryRun {
			s.dryRun(r)
			return nil
		}
		r.save()
		return s.execute(ctx, r)
	})
}

// execute runs the stages from workspace on. It returns nil when nothing may
// be reported any more (lease lost, abort).
func (s *Supervisor) execute(ctx context.Context, r *run) *trakkar.Completion {
	ws, comp := s.readyWorkspace(ctx, r)
	if ws == nil {
		return comp
	}
	started := time.Now()
	ar, err := s.runAgent(ctx, r, ws)
	s.timed(PhaseAgent, started)
	if err != nil {
		return s.fail(r, failReason{kind: reasonContainer}, err)
	}
	return s.finish(ctx, r, ws, ar)
}

// readyWorkspace is the workspace stage: it prepares and records the task's
// workspace, or returns no workspace and the run's completion (nil when
// nothing may be reported any more).
func (s *Supervisor) readyWorkspace(ctx context.Context, r *run) (*workspace, *trakkar.Completion) {
	defer s.timed(PhaseWorkspace, time.Now())
	ws, err := s.prepareWorkspace(ctx, r)
	// A lost attempt goes no further: a newer one of the run waits for it.
	if r.isLost() {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, s.fail(r, failReason{kind: reasonWorkspace, msg: "prepare workspace", event: "Could not prepare the workspace"}, err)
	}
	r.rec.Worktree, r.rec.Base = ws.wt, ws.base
	r.save()
	r.status("Workspace ready on branch %s (%s)", ws.wt.Branch, ws.origin())
	if r.stopRequested() {
		return nil, &trakkar.Completion{Outcome: trakkar.OutcomeStopped, Summary: "Stopped before the agent started."}
	}
	if s.draining() {
		return nil, s.shutdownStopped()
	}
	return ws, nil
}

// finish runs the stages after the agent's container has ended: its outcome,
// verify and publish. It returns the completion, or nil when nothing may be
// reported any more.
func (s *Supervisor) finish(ctx context.Context, r *run, ws *workspace, ar *agentRun) *trakkar.Completion {
	switch ar.end {
	case endLost, endAborted:
		return nil
	}
	if err := s.takeBack(ws); err != nil {
		return s.fail(r, failReason{kind: reasonWorkspace, silent: true}, err)
	}
	defer s.box().ReleaseShares(ctx, sandboxRun(r, ws))
	comp := s.outcome(r, ar)
	var vr *verifyReport
	if comp == nil && s.verifyCommand() != "" {
		started := time.Now()
		ar, vr, comp = s.verifyAndFix(ctx, r, ws, ar)
		s.timed(PhaseVerify, started)
		if ar.end == endLost || ar.end == endAborted {
			return nil
		}
	}
	if comp == nil {
		started := time.Now()
		pub := s.publish(ctx, r, ws, ar.result, vr)
		if pub == nil {
			return nil // lease lost or aborting before publishing
		}
		s.timed(PhasePublish, started)
		comp = s.verifyVerdict(r, pub, vr)
	}
	s.attachSession(comp, ar)
	return comp
}

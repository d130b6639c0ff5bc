package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/sandbox"
	"github.com/trakkar/trakkar-agent/internal/termtext"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// How much of the verify output is kept for the PR body and the fix prompt.
const (
	tailLines = 60
	tailChars = 4000
)

// verifyRound is one run of the verify command.
type verifyRound struct {
	Round     int
	Passed    bool
	TimedOut  bool
	ExitCode  int
	OOMKilled bool
	Duration  time.Duration
	Tail      string
	end       ending // endExited unless a Stop, drain, lease loss or abort cut it short
}

// verifyReport is what the PR and the completion say about verification.
type verifyReport struct {
	Command string
	Rounds  []verifyRound
	Retries int // fix rounds allowed
}

func (v *verifyReport) last() verifyRound { return v.Rounds[len(v.Rounds)-1] }

// failed reports whether verification ran and did not pass in the end.
func (v *verifyReport) failed() bool { return v != nil && len(v.Rounds) > 0 && !v.last().Passed }

// what says in a few words how a failed round ended.
func (v verifyRound) what(timeout time.Duration) string {
	switch {
	case v.TimedOut:
		return fmt.Sprintf("timed out after %s and was killed", timeout)
	case v.OOMKilled:
		return "ran out of memory"
	}
	return fmt.Sprintf("exited with code %d", v.ExitCode)
}

// verifyCommand is the agent's verify command; "" when it has none.
func (s *Supervisor) verifyCommand() string {
	if s.agent.VerifyCommand == nil {
		return ""
	}
	return strings.TrimSpace(*s.agent.VerifyCommand)
}

// verifyAndFix runs the verify command after a successful agent run and, while
// it fails and fix rounds remain, resumes the agent with the failure to fix it.
// It returns the last agent run (usage summed over all of them), the report,
// and a completion when the run ends here (stopped, or the fixing agent
// failed). A returned run that ended endLost or endAborted reports nothing.
func (s *Supervisor) verifyAndFix(ctx context.Context, r *run, ws *workspace, ar *agentRun) (*agentRun, *verifyReport, *trakkar.Completion) {
	rep := &verifyReport{Command: s.verifyCommand(), Retries: s.cfg.VerifyRetries, Rounds: slices.Clone(r.rec.VerifyRounds)}
	if len(rep.Rounds) > 0 && rep.last().Passed {
		// Passed before a restart; nothing has touched the worktree since.
		return ar, rep, nil
	}
	for round := len(rep.Rounds) + 1; ; round++ {
		if r.isLost() {
			return &agentRun{end: endLost, result: ar.result}, rep, nil
		}
		if r.stopRequested() {
			return ar, rep, s.verifyCut(r, endStopped)
		}
		if s.draining() {
			return ar, rep, s.verifyCut(r, endDrained)
		}
		v, err := s.verifyOnce(ctx, r, ws, rep.Command, round)
		if err != nil {
			return ar, rep, s.fail(r, failReason{kind: reasonVerify, msg: "verify", event: "Could not run the verify command"}, err)
		}
		switch v.end {
		case endStopped, endDrained:
			return ar, rep, s.verifyCut(r, v.end)
		case endLost, endAborted:
			return &agentRun{end: v.end, result: ar.result}, rep, nil
		}
		rep.Rounds = append(rep.Rounds, v)
		r.rec.VerifyRounds = rep.Rounds
		r.save()
		if v.Passed {
			r.emit(trakkar.EventStatus, fmt.Sprintf("Verify passed in %s: %s", roundDuration(v.Duration), rep.Command),
				map[string]any{"command": rep.Command, "round": round, "duration_ms": v.Duration.Milliseconds()})
			return ar, rep, nil
		}
		r.emit(trakkar.EventError, fmt.Sprintf("Verify failed: %s %s", rep.Command, v.what(s.cfg.VerifyTimeout)),
			map[string]any{"command": rep.Command, "round": round, "exit_code": v.ExitCode, "timed_out": v.TimedOut})
		if round > rep.Retries {
			return ar, rep, nil
		}
		r.status("Resuming the agent to fix the failure (fix round %d of %d)", round, rep.Retries)
		fix, comp := s.fixRound(ctx, r, ws, rep, v)
		ar = mergeRuns(ar, fix)
		if comp != nil || ar.end == endLost || ar.end == endAborted {
			return ar, rep, comp
		}
	}
}

// verifyCut is the completion of a run stopped during verification.
func (s *Supervisor) verifyCut(r *run, end ending) *trakkar.Completion {
	if end == endDrained {
		r.status("Verification stopped because the runner is shutting down; the workspace is kept")
		return s.shutdownStopped()
	}
	r.status("Verification stopped; the workspace is kept")
	return &trakkar.Completion{Outcome: trakkar.OutcomeStopped, Summary: "Stopped at the person's request."}
}

// fixRound resumes the agent with the failure and returns its run, and a
// completion when it did not succeed.
func (s *Supervisor) fixRound(ctx context.Context, r *run, ws *workspace, rep *verifyReport, v verifyRound) (*agentRun, *trakkar.Completion) {
	// The previous run's result must never be read as this one's.
	clearResult(ws)
	job, resumed := s.fixJob(r, ws, fixPrompt(rep.Command, v, s.cfg.VerifyTimeout))
	fix, err := s.startAgent(ctx, r, ws, job, resumed)
	if err != nil {
		return &agentRun{end: endExited}, s.fail(r, failReason{kind: reasonContainer}, err)
	}
	switch fix.end {
	case endLost, endAborted:
		return fix, nil
	}
	if err := s.takeBack(ws); err != nil {
		return fix, s.fail(r, failReason{kind: reasonWorkspace, silent: true}, err)
	}
	return fix, s.outcome(r, fix)
}

// mergeRuns makes a fix round's run the current one, keeping what the earlier
// runs spent and said.
func mergeRuns(prev, fix *agentRun) *agentRun {
	if fix == nil {
		return prev
	}
	out := *fix
	if prev.result == nil {
		return &out
	}
	res := *prev.result
	if fix.result != nil {
		res.Usage.DurationMS += fix.result.Usage.DurationMS
		res.Usage.Turns += fix.result.Usage.Turns
		res.Usage.CostUSD += fix.result.Usage.CostUSD
		res.Usage.InputTokens += fix.result.Usage.InputTokens
		res.Usage.OutputTokens += fix.result.Usage.OutputTokens
		res.Outcome, res.Error = fix.result.Outcome, fix.result.Error
		if fix.result.SessionID != "" {
			res.SessionID = fix.result.SessionID
		}
		if sum := strings.TrimSpace(fix.result.Summary); sum != "" {
			res.Summary = strings.TrimSpace(res.Summary + "\n\nAfter the verify command failed: " + sum)
		}
	}
	out.result = &res
	return &out
}

// verifyOnce runs the command once in a fresh container on the worktree and
// streams its output into the task.
func (s *Supervisor) verifyOnce(ctx context.Context, r *run, ws *workspace, cmd string, round int) (_ verifyRound, rerr error) {
	v := verifyRound{Round: round, end: endExited}
	r.setState(trakkar.StateVerifying)
	r.log.Info("verifying", zap.String("command", s.redact.String(cmd)), zap.Int("round", round))
	r.emit(trakkar.EventStatus, "Verifying: "+cmd, map[string]any{"command": cmd, "round": round})
	s.removeVerifyContainers(ctx, r)
	if err := s.handOver(ws); err != nil {
		return v, err
	}
	defer func() {
		if err := s.takeBack(ws); err != nil {
			r.log.Warn("take workspace back after verify", zap.Error(err))
		}
	}()
	box, sr := s.box(), sandboxRun(r, ws)
	if err := box.PrepareShares(sr); err != nil {
		return v, err
	}
	tn, err := box.StartEgress(ctx, sandboxReporter{s, r}, sr, false)
	defer box.StopEgress(ctx, r.claim.Run.ID)
	if err != nil {
		return v, fmt.Errorf("set up the network: %w", err)
	}
	vol, err := box.VerifyVolume(sr, round)
	if err != nil {
		return v, err
	}
	// Deferred before the container's removal, so it runs after it.
	defer box.ReleaseVerifyVolume(ctx, sr, vol)
	spec := box.VerifySpec(sr, cmd, round, vol)
	tn.Apply(&spec)
	id, err := s.createContainer(ctx, r, spec)
	if err != nil {
		return v, fmt.Errorf("create verify container: %w", err)
	}
	defer func() {
		if err := s.containerGone(ctx, r, ws, id); err != nil && rerr == nil && v.end != endAborted {
			rerr = err
		}
	}()
	log := r.log.With(zap.String("container_id", shortID(id)))

	// The tail goes into the PR body and the fix prompt: no terminal sequences.
	tail := &tailBuffer{mask: s.verifyLine}
	lineTo := func(stream string) lineSink {
		return func(line []byte, add func(trakkar.Event, logPos)) {
			_, text := splitStamp(line)
			tail.add(string(text))
			add(r.event(trakkar.EventLog, string(text), map[string]any{"stream": stream, "source": "verify", "round": round}), logPos{})
		}
	}
	started := time.Now()
	waitCh, err := s.rt.Start(ctx, id)
	if err != nil {
		return v, fmt.Errorf("start verify container: %w", err)
	}
	ce, err := s.runContainer(ctx, r, id, waitCh, runOpts{
		what:     "verify container",
		deadline: s.cfg.VerifyTimeout,
		stdout:   lineTo("stdout"),
		stderr:   lineTo("stderr"),
	})
	v.end, v.TimedOut = ce.end, ce.timedOut
	if ce.end == endAborted {
		// A verify cannot be resumed by a restarted supervisor, so it goes at
		// once (the deferred remove kills it).
		return v, nil
	}
	v.Duration = ce.at.Sub(started)
	v.Tail = tail.String()
	if err != nil {
		return v, err
	}
	v.ExitCode, v.OOMKilled = ce.exit.Code, ce.exit.OOMKilled
	v.Passed = v.end == endExited && !v.TimedOut && !v.OOMKilled && v.ExitCode == 0
	log.Info("verify finished", zap.Bool("passed", v.Passed), zap.Int("exit_code", v.ExitCode),
		zap.Bool("timed_out", v.TimedOut), zap.Duration("duration", v.Duration))
	return v, nil
}

// removeVerifyContainers removes verify containers of this run that an
// earlier process of this runner left behind; their names would clash with the
// next round's. Another runner's, of another attempt of the run, are its own.
func (s *Supervisor) removeVerifyContainers(ctx context.Context, r *run) {
	cs, err := s.rt.List(ctx, sandbox.Owned(s.cfg.Runner.ID, r.claim.Run.ID, RoleVerify))
	if err != nil {
		r.log.Warn("list old verify containers", zap.Error(err))
		return
	}
	for _, c := range cs {
		s.removeContainer(ctx, r, c.ID)
	}
}

// tailBuffer keeps the last lines of the verify output.
// verifyLine is a verify output line as the tail keeps it: masked, without
// terminal sequences.
func (s *Supervisor) verifyLine(l string) string { return s.redact.String(termtext.Strip(l)) }

type tailBuffer struct {
	mu    sync.Mutex
	lines []string
	mask  func(string) string // masks secrets in a whole line before it is cut
}

func (t *tailBuffer) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mask != nil {
		line = t.mask(line)
	}
	if len(line) > tailChars {
		line = line[:tailChars]
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// String is the kept lines, cut from the front to tailChars.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return lastChars(strings.Join(t.lines, "\n"), tailChars)
}

// lastChars cuts s from the front to at most n bytes, at a line start when
// one is near.
func lastChars(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < n/4 {
		return s[i+1:]
	}
	for len(s) > 0 && !utf8Start(s[0]) {
		s = s[1:]
	}
	return s
}

// lastLines is the end of s: at most n lines and max bytes.
func lastLines(s string, n, max int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lastChars(strings.Join(lines, "\n"), max)
}

// roundDuration shows a duration the way a person reads it.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// verifyVerdict turns a published run whose verify command never passed into
// a failure: the change is pushed (as a draft PR when PRs are opened) so the
// work is not lost, but the run did not do what was asked.
func (s *Supervisor) verifyVerdict(r *run, comp *trakkar.Completion, vr *verifyReport) *trakkar.Completion {
	if !vr.failed() || (comp.Outcome != trakkar.OutcomeSucceeded && comp.Outcome != trakkar.OutcomeNoChanges) {
		return comp // passed, or publishing failed and its reason stands
	}
	last := vr.last()
	reason := fmt.Sprintf("verify failed: %s %s", vr.Command, last.what(s.cfg.VerifyTimeout))
	if n := len(vr.Rounds) - 1; n > 0 {
		reason += fmt.Sprintf(" (after %d fix %s)", n, plural(n, "round", "rounds"))
	}
	switch pr := comp.PullRequest; {
	case pr != nil && pr.Draft:
		r.status("Opened the pull request as a draft because verify failed")
	case pr != nil:
		r.status("Verify failed; the task's existing pull request was updated and stays as it is")
	case s.cfg.Publish != PublishPR:
		r.status("Verify failed; no pull request is opened with --publish %s", s.cfg.Publish)
	}
	if tail := lastLines(last.Tail, 20, 1500); tail != "" {
		reason += "\n\nLast output:\n" + tail
	}
	comp.Outcome, comp.Error = trakkar.OutcomeFailed, &reason
	return comp
}

// clearResult removes the worker's result so a run that leaves none is not
// judged by the previous one's.
func clearResult(ws *workspace) {
	_ = os.Remove(filepath.Join(ws.outDir, workerproto.ResultFile))
}

package supervisor

import (
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// Outcomes of a run that this process ended without completing it in Trakkar,
// beside the trakkar.Outcome* of a completed one.
const (
	OutcomeLost    = "lost"    // the lease was lost; Trakkar decides the run's fate
	OutcomeAborted = "aborted" // the runner was aborted before the run completed
	OutcomeCrashed = "crashed" // a bug ended the run; it is left to its lease
	OutcomeDryRun  = "dry_run" // read only; the run is re-queued when its lease lapses
	// OutcomeUnfinished: the run ended with nothing to report (a recovered
	// record in a phase this version does not know).
	OutcomeUnfinished = "unfinished"
)

// RunResult is how one run this process worked ended: what --once reports.
type RunResult struct {
	TaskKey  string
	RunID    string
	Outcome  string // a trakkar.Outcome* or one of the Outcome* above
	PRURL    string // the pull request, when one was opened
	Reason   string // why it failed, as Trakkar was told
	Duration time.Duration
}

// OK says whether the run ended as a CI job would want: its change published,
// nothing to change, or only read.
func (r RunResult) OK() bool {
	switch r.Outcome {
	case trakkar.OutcomeSucceeded, trakkar.OutcomeNoChanges, OutcomeDryRun:
		return true
	}
	return false
}

// newResult starts a run's result; until ended says otherwise, the run crashed.
func newResult(r *run) *RunResult {
	return &RunResult{TaskKey: r.claim.Task.Key, RunID: r.claim.Run.ID, Outcome: OutcomeCrashed,
		Reason: "the run crashed; it is left to its lease"}
}

// settle fills in how drive ended the run; completed says the completion was
// sent to Trakkar.
func (s *Supervisor) settle(res *RunResult, r *run, comp *trakkar.Completion, completed, aborted bool) {
	res.Reason = ""
	switch {
	case completed:
		res.Outcome = comp.Outcome
		if comp.Error != nil {
			res.Reason = *comp.Error
		}
		if comp.PullRequest != nil {
			res.PRURL = comp.PullRequest.URL
		}
	case r.isLost():
		res.Outcome, res.Reason = OutcomeLost, "the lease was lost"
	case aborted:
		res.Outcome, res.Reason = OutcomeAborted, "the runner was aborted before the run completed"
	case s.cfg.DryRun:
		res.Outcome = OutcomeDryRun
	default:
		res.Outcome, res.Reason = OutcomeUnfinished, "the run ended without an outcome"
	}
}

// report hands a run's result to the caller's hook, if any.
func (s *Supervisor) report(res *RunResult, started time.Time) {
	s.metrics.RunEnded(res.Outcome)
	if s.onRunEnd == nil {
		return
	}
	res.Duration = time.Since(started)
	res.Reason = s.redact.String(res.Reason)
	s.onRunEnd(*res)
}

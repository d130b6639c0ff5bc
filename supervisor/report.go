package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/termtext"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// runReporter is what a run needs to report and remember on its own: the
// masking of its events and where its record goes. The pipeline's steps
// report and save through the run, never back through the Supervisor.
type runReporter struct {
	redact   *redact.Redactor
	recDir   string // the task's state folder; "" in a dry run, which saves nothing
	runnerID string
}

// reporter is the reporter of a run of task t.
func (s *Supervisor) reporter(t trakkar.Task) runReporter {
	rp := runReporter{redact: s.redact, runnerID: s.cfg.Runner.ID}
	if !s.cfg.DryRun {
		rp.recDir = s.stateDirFor(t)
	}
	return rp
}

// event builds a Trakkar event with secrets masked.
func (r *run) event(typ, text string, data map[string]any) trakkar.Event {
	// Terminal sequences are stripped here too: a custom image's worker may not.
	ev := trakkar.Event{Type: typ, Text: r.redact.String(termtext.Strip(text)), At: time.Now().UTC()}
	if data != nil {
		ev.Data, _ = r.redact.Value(data).(map[string]any)
	}
	return ev
}

// emit sends one event to Trakkar, masking secrets first. Status and error
// events are the run's lifecycle: the log gets them too, in the same words.
func (r *run) emit(typ, text string, data map[string]any) {
	ev := r.event(typ, text, data)
	r.logLifecycle(ev)
	if r.isLost() {
		return
	}
	r.ship.Add(ev)
	r.last.note(ev)
}

// status sends a status line to the task, and so to the log.
func (r *run) status(format string, args ...any) {
	r.emit(trakkar.EventStatus, fmt.Sprintf(format, args...), nil)
}

// logLifecycle logs a status or error event (the supervisor's or the
// worker's) with its text, masked as it was for Trakkar, as the message.
func (r *run) logLifecycle(ev trakkar.Event) {
	switch ev.Type {
	case trakkar.EventStatus:
		r.log.Info(ev.Text)
	case trakkar.EventError:
		r.log.Warn(ev.Text)
	}
}

// save writes the run's record; failing to is logged, never fatal: the run
// goes on, it is only harder to recover.
func (r *run) save() {
	if r.recDir == "" {
		return
	}
	r.rec.UpdatedAt = time.Now().UTC()
	r.rec.RunnerID = r.runnerID
	b, err := json.MarshalIndent(r.rec, "", "  ")
	if err == nil {
		dir := r.recDir
		if err = os.MkdirAll(dir, 0o755); err == nil {
			err = writeFileAtomic(filepath.Join(dir, recordFile), b)
		}
	}
	if err != nil {
		r.log.Warn("write run record", zap.Error(err))
	}
}

// setPhase records the phase the run has reached.
func (r *run) setPhase(phase string) {
	r.rec.Phase = phase
	r.save()
}

package supervisor

import (
	"errors"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/logkey"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// reasonKind is which step of a run failed.
type reasonKind int

const (
	reasonWorkspace reasonKind = iota // preparing or taking back the workspace
	reasonContainer                   // starting or following a container
	reasonResources                   // out of memory, or past --max-workspace-mb
	reasonAgent                       // the agent failed or left no result
	reasonVerify                      // the verify command could not run
	reasonRefused                     // the change broke the import policy or held a secret
	reasonPublish                     // staging, committing, pushing or the pull request
	reasonRecovery                    // a restarted runner could not pick the run up
)

var reasonNames = [...]string{"workspace", "container", "resources", "agent", "verify", "refused", "publish", "recovery"}

func (k reasonKind) String() string {
	if int(k) < len(reasonNames) {
		return reasonNames[k]
	}
	return "unknown"
}

// failReason says why a run failed: the completion's text and the task's
// error event. Each is "text: cause" when the failure has a cause.
type failReason struct {
	kind reasonKind
	msg  string // the completion's error; "" is the cause alone
	// event is the error event's text; "" says msg. Silent sends none: the
	// worker reported the failure itself, or it needs no word of its own.
	event  string
	silent bool
	kept   bool // the event adds that the workspace is kept for inspection
}

// fail reports a failed run once: the error event, then the completion.
func (s *Supervisor) fail(r *run, reason failReason, cause error) *trakkar.Completion {
	comp := failed(withCause(reason.msg, cause))
	r.log.Info("run failed", zap.Stringer("step", reason.kind), zap.String(logkey.Reason, r.redact.String(*comp.Error)))
	if !reason.silent {
		text := reason.event
		if text == "" {
			text = reason.msg
		}
		text = withCause(text, cause)
		if reason.kept {
			text += ". The workspace is kept for inspection."
		}
		r.emit(trakkar.EventError, text, nil)
	}
	return comp
}

// withCause is "text: cause", or either alone.
func withCause(text string, cause error) string {
	switch {
	case cause == nil:
		return text
	case text == "":
		return cause.Error()
	}
	return text + ": " + cause.Error()
}

func failed(reason string) *trakkar.Completion {
	return &trakkar.Completion{Outcome: trakkar.OutcomeFailed, Error: &reason}
}

// errText makes a cause of a reason that is text already.
func errText(s string) error { return errors.New(s) }

// refused is the reason of a change that is not committed: the workspace
// stays as the agent left it.
func refused(msg string) failReason {
	return failReason{kind: reasonRefused, msg: msg, event: "The change was refused and not committed", kept: true}
}

// Package workerproto is the line protocol between the worker (inside the container) and
// the supervisor: the worker writes one JSON Line per event on stdout and a final
// Result file into its output directory, and exits with one of the codes below.
package workerproto

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Line types. They match Trakkar's event types one to one.
const (
	TypeStatus  = "status"
	TypeMessage = "message"
	TypeTool    = "tool"
	TypeLog     = "log"
	TypeError   = "error"
)

// Line is one normalized event written by the worker.
type Line struct {
	Type string         `json:"type"`
	Text string         `json:"text"`
	Data map[string]any `json:"data,omitempty"`
	At   time.Time      `json:"at"`
	// N numbers the worker's lines from 1 without gaps, so the supervisor can
	// tell lines lost to log rotation (a gap) and repeated ones (not newer).
	N int64 `json:"n,omitempty"`
}

// Encode returns the line as JSON followed by a newline.
func (l Line) Encode() []byte {
	b, err := json.Marshal(l)
	if err != nil {
		// Data holds only JSON-decoded values; fall back to the text alone.
		b, _ = json.Marshal(Line{Type: l.Type, Text: l.Text, At: l.At})
	}
	return append(b, '\n')
}

// Parse turns one stdout line of the worker into an event. A line that is not a
// worker event (for example a stray print of the image's entrypoint) becomes a log
// event carrying the raw text, so nothing the container prints is lost.
func Parse(raw []byte, now time.Time) Line {
	s := strings.TrimRight(string(raw), "\r\n")
	var l Line
	if err := json.Unmarshal([]byte(s), &l); err == nil && validType(l.Type) {
		if l.At.IsZero() {
			l.At = now
		}
		return l
	}
	return Line{Type: TypeLog, Text: s, At: now}
}

func validType(t string) bool {
	switch t {
	case TypeStatus, TypeMessage, TypeTool, TypeLog, TypeError:
		return true
	}
	return false
}

// Outcomes written in Result.Outcome.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeStopped   = "stopped"
)

// Usage is what the agent reported spending.
type Usage struct {
	DurationMS   int64   `json:"duration_ms"`
	Turns        int     `json:"turns"`
	CostUSD      float64 `json:"cost_usd"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
}

// Result is the worker's final word, written to ResultFile in the output directory.
type Result struct {
	Outcome   string `json:"outcome"`
	Summary   string `json:"summary"`
	Error     string `json:"error,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Usage     Usage  `json:"usage"`
	// Lines is how many event lines the worker wrote to stdout, signed in
	// LinesSig (see SignCount).
	Lines    int64  `json:"lines,omitempty"`
	LinesSig string `json:"lines_sig,omitempty"`
}

// ResultFile is the name of the result inside the output directory.
const ResultFile = "result.json"

// Exit codes of the worker. The supervisor trusts Result first and uses the exit
// code when the result file is missing or unreadable.
const (
	ExitOK          = 0   // the agent finished and reported success
	ExitAgentFailed = 1   // the agent ran and reported a failure (Result.Error says why)
	ExitUsage       = 2   // the worker was started wrongly (bad job file, unknown provider)
	ExitCLIMissing  = 3   // the agent CLI is not in the image
	ExitCLICrashed  = 4   // the CLI exited non-zero without a result
	ExitStopped     = 143 // SIGTERM: the agent was stopped
)

// ExitReason is a one-line explanation of a worker exit code, used when no
// result file is available.
func ExitReason(code int) string {
	switch code {
	case ExitOK:
		return "worker exited successfully"
	case ExitAgentFailed:
		return "the agent reported a failure"
	case ExitUsage:
		// The worker writes a result for a bad job itself; without one, 2 is
		// more likely the Go runtime's own exit status for a fatal error.
		return "the worker exited with status 2: it could not start, or it crashed (its stderr is in the run's log)"
	case ExitCLIMissing:
		return "the agent CLI is missing from the image"
	case ExitCLICrashed:
		return "the agent CLI crashed"
	case ExitStopped:
		return "the agent was stopped"
	case 137:
		return "the container was killed (out of memory or SIGKILL)"
	}
	return fmt.Sprintf("worker exited with status %d", code)
}

// Job is what the supervisor hands the worker, as JSON in the input directory.
type Job struct {
	Provider  string   `json:"provider"`             // claude_code | cursor
	Model     string   `json:"model,omitempty"`      // optional model override
	Prompt    string   `json:"prompt"`               // the full prompt
	SessionID string   `json:"session_id"`           // canonical session id to create or resume
	Resume    bool     `json:"resume"`               // resume SessionID instead of creating it
	ExtraArgs []string `json:"extra_args,omitempty"` // appended to the CLI argv (tests, power users)
}

// JobFile is the job's name inside the input directory.
const JobFile = "job.json"

// Paths inside the container.
const (
	InDir     = "/trakkar/in"
	OutDir    = "/trakkar/out"
	Workspace = "/workspace"
)

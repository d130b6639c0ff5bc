package supervisor

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// Bounds on what a result may report spending; beyond them the number is not
// something an agent run spent but something written to mislead.
const (
	maxResultDurationMS = 30 * 24 * 3600 * 1000 // 30 days
	maxResultTurns      = 1_000_000
	maxResultCostUSD    = 100_000
	maxResultTokens     = 1_000_000_000_000
)

// resultOf reads the worker's result and drops what it may not carry (see
// checkedResult), saying so in the task and the log.
func (s *Supervisor) resultOf(r *run, ws *workspace) *workerproto.Result {
	res, problems := checkedResult(ws.inDir, ws.outDir, readResult(ws.outDir))
	for _, p := range problems {
		r.emit(trakkar.EventError, "Ignored in the agent's result file: "+p, nil)
	}
	return res
}

// checkedResult validates a result the agent could have written itself (the
// output folder is writable in the container): the session id must be the one
// the job asked for (or, for a new cursor chat, a UUID), the outcome one the
// worker writes, and usage numbers non-negative and bounded. A bad outcome
// drops the whole result, so the exit code decides; other bad fields are
// cleared. The problems are one line each and never quote the agent's text.
func checkedResult(inDir, outDir string, res *workerproto.Result) (*workerproto.Result, []string) {
	if res == nil {
		return nil, nil
	}
	var problems []string
	switch res.Outcome {
	case workerproto.OutcomeSucceeded, workerproto.OutcomeFailed, workerproto.OutcomeStopped:
	default:
		return nil, []string{"unknown outcome; the result was dropped and the worker's exit status decides"}
	}
	out := *res
	if out.SessionID != "" && !sessionIDExpected(inDir, out.SessionID) {
		problems = append(problems, "session id is not the one the job asked for; dropped")
		out.SessionID = ""
	}
	u := &out.Usage
	check := func(name string, ok bool, clear func()) {
		if !ok {
			problems = append(problems, fmt.Sprintf("usage %s out of range; dropped", name))
			clear()
		}
	}
	check("duration_ms", u.DurationMS >= 0 && u.DurationMS <= maxResultDurationMS, func() { u.DurationMS = 0 })
	check("turns", u.Turns >= 0 && u.Turns <= maxResultTurns, func() { u.Turns = 0 })
	check("cost_usd", u.CostUSD >= 0 && u.CostUSD <= maxResultCostUSD, func() { u.CostUSD = 0 })
	check("input_tokens", u.InputTokens >= 0 && u.InputTokens <= maxResultTokens, func() { u.InputTokens = 0 })
	check("output_tokens", u.OutputTokens >= 0 && u.OutputTokens <= maxResultTokens, func() { u.OutputTokens = 0 })
	return &out, problems
}

// sessionIDExpected reports whether id is the session the job (written by the
// supervisor, mounted read-only) asked for. A new cursor chat has an id the
// CLI chooses; only a UUID is accepted for it.
func sessionIDExpected(inDir, id string) bool {
	var job workerproto.Job
	if f, err := os.Open(filepath.Join(inDir, workerproto.JobFile)); err == nil {
		err = json.NewDecoder(io.LimitReader(f, 16<<20)).Decode(&job)
		f.Close()
		if err != nil {
			job = workerproto.Job{}
		}
	}
	if job.SessionID != "" {
		return id == job.SessionID
	}
	u, err := uuid.Parse(id)
	return err == nil && u.String() == strings.ToLower(id)
}

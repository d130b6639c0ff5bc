package supervisor

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// The verify rounds of a run survive in its record, and a restarted
// supervisor continues from them: the fix-round budget is not granted afresh
// and a round that passed is not run again.
func TestRecordKeepsVerifyRounds(t *testing.T) {
	cmd := "make check"
	s := &Supervisor{
		cfg:   Config{WorktreeRoot: t.TempDir(), VerifyRetries: 2, Runner: RunnerInfo{ID: "rnr_unit"}},
		agent: trakkar.Agent{VerifyCommand: &cmd},
		log:   zap.NewNop(),
	}
	claim := trakkar.Claim{Run: trakkar.Run{ID: "run_unit", Attempt: 1}, Task: trakkar.Task{ID: "tsk_unit", Key: "UNIT-1"}}
	tests := []struct {
		name   string
		rounds []verifyRound
	}{
		{"one failed", []verifyRound{{Round: 1, ExitCode: 3, Tail: "FAIL", Duration: time.Second}}},
		{"failed then passed", []verifyRound{{Round: 1, ExitCode: 1}, {Round: 2, Passed: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &run{runReporter: s.reporter(claim.Task), claim: claim, log: zap.NewNop(), stopReq: make(chan struct{}), lost: make(chan struct{})}
			r.rec = runRecord{Claim: claim, Phase: phaseFinishing, VerifyRounds: tt.rounds}
			r.save()
			recs := s.loadRecords()
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			got := recs[0].VerifyRounds
			if len(got) != len(tt.rounds) {
				t.Fatalf("rounds after a restart: %+v, want %+v", got, tt.rounds)
			}
			for i := range got {
				if got[i] != tt.rounds[i] {
					t.Errorf("round %d: %+v, want %+v", i, got[i], tt.rounds[i])
				}
			}
			if last := tt.rounds[len(tt.rounds)-1]; last.Passed {
				// Nothing may run: a passed round is the answer (no runtime is
				// set, so running a round would fail the test).
				r2 := &run{claim: claim, rec: recs[0], log: zap.NewNop(), stopReq: make(chan struct{}), lost: make(chan struct{})}
				_, rep, comp := s.verifyAndFix(context.Background(), r2, &workspace{}, &agentRun{})
				if comp != nil || rep.failed() || len(rep.Rounds) != len(tt.rounds) {
					t.Errorf("after a passed round: completion %+v, report %+v", comp, rep)
				}
			}
		})
	}
}

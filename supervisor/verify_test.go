package supervisor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

func TestTailBufferKeepsTheEnd(t *testing.T) {
	var tb tailBuffer
	for i := 0; i < 100; i++ {
		tb.add(fmt.Sprintf("line %d", i))
	}
	lines := strings.Split(tb.String(), "\n")
	if len(lines) != tailLines || lines[0] != "line 40" || lines[len(lines)-1] != "line 99" {
		t.Fatalf("kept %d lines, %q … %q", len(lines), lines[0], lines[len(lines)-1])
	}

	var long tailBuffer
	for i := 0; i < 10; i++ {
		long.add(fmt.Sprintf("%d%s", i, strings.Repeat("é", 600)))
	}
	s := long.String()
	if len(s) > tailChars || !strings.HasPrefix(s, "9") && !strings.Contains(s, "\n9") {
		t.Fatalf("tail of %d bytes, or without the last line", len(s))
	}
	if !strings.HasSuffix(s, "é") || strings.ToValidUTF8(s, "?") != s {
		t.Fatalf("tail cut inside a character")
	}
}

func TestFixPromptQuotesTheFailure(t *testing.T) {
	tests := []struct {
		name string
		v    verifyRound
		want []string
	}{
		{"exit", verifyRound{ExitCode: 2, Tail: "FAIL a\nFAIL b"},
			[]string{"Command: npm test\n", "Result: it exited with code 2\n", "\n    FAIL a\n    FAIL b\n", "Do not weaken"}},
		{"timeout", verifyRound{TimedOut: true, Tail: "hanging"},
			[]string{"timed out after 30s and was killed", "    hanging\n"}},
		{"oom", verifyRound{OOMKilled: true}, []string{"ran out of memory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := fixPrompt("npm test", tc.v, 30*time.Second)
			for _, w := range tc.want {
				if !strings.Contains(p, w) {
					t.Errorf("prompt lacks %q:\n%s", w, p)
				}
			}
		})
	}
}

func TestVerifySection(t *testing.T) {
	passed := verifyRound{Round: 1, Passed: true, Duration: 1520 * time.Millisecond}
	failedRound := verifyRound{Round: 2, ExitCode: 1, Tail: "ok\n```go\nx\n```"}
	tests := []struct {
		name string
		vr   *verifyReport
		want []string
		not  []string
	}{
		{"none", nil, nil, []string{"Verification"}},
		{"passed", &verifyReport{Command: "go test ./...", Rounds: []verifyRound{passed}},
			[]string{"## Verification\n\n`go test ./...` passed in 1.5s.\n"}, []string{"fix round", "failed"}},
		{"passed after a fix", &verifyReport{Command: "make check", Rounds: []verifyRound{{ExitCode: 1}, passed}},
			[]string{"`make check` passed in 1.5s, after 1 fix round by the agent."}, nil},
		{"failed", &verifyReport{Command: "go vet", Rounds: []verifyRound{{ExitCode: 1}, failedRound}},
			[]string{"## Verification failed", "`go vet` exited with code 1, after 1 fix round", "draft", "\n````\nok\n```go\nx\n```\n````\n"}, nil},
		{"command with backticks", &verifyReport{Command: "echo `date`", Rounds: []verifyRound{passed}},
			[]string{"`` echo `date` `` passed"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := verifySection(tc.vr, time.Minute)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("section lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("section has %q:\n%s", n, got)
				}
			}
		})
	}
	body := prBodyVerified(trakkar.Claim{Task: trakkar.Task{Key: "K-1", Title: "T"}},
		"summary", &verifyReport{Command: "true", Rounds: []verifyRound{passed}}, time.Minute)
	if i, j := strings.Index(body, "## Verification"), strings.Index(body, "---\nOpened by"); i < 0 || j < i {
		t.Errorf("verification section not before the footer:\n%s", body)
	}
}

func testSupervisor(cfg Config) *Supervisor {
	return &Supervisor{cfg: cfg, log: zap.NewNop(), redact: redact.New(), drainCh: make(chan struct{})}
}

// testRun is a run whose events go nowhere (its lease is gone).
func testRun() *run {
	r := &run{log: zap.NewNop(), stopReq: make(chan struct{}), lost: make(chan struct{})}
	r.markLost()
	return r
}

func TestVerifyVerdict(t *testing.T) {
	s := testSupervisor(Config{Publish: PublishPR, VerifyTimeout: time.Minute})
	failing := &verifyReport{Command: "npm test", Rounds: []verifyRound{{ExitCode: 1}, {ExitCode: 1, Tail: "x\nAssertionError: 1 != 2"}}}
	tests := []struct {
		name        string
		comp        *trakkar.Completion
		vr          *verifyReport
		wantOutcome string
		wantErr     []string
	}{
		{"passed", &trakkar.Completion{Outcome: trakkar.OutcomeSucceeded},
			&verifyReport{Command: "true", Rounds: []verifyRound{{Passed: true}}}, trakkar.OutcomeSucceeded, nil},
		{"no verify", &trakkar.Completion{Outcome: trakkar.OutcomeSucceeded}, nil, trakkar.OutcomeSucceeded, nil},
		{"failed with a draft", &trakkar.Completion{Outcome: trakkar.OutcomeSucceeded, PullRequest: &trakkar.PullRequest{URL: "u", Draft: true}},
			failing, trakkar.OutcomeFailed, []string{"verify failed: npm test exited with code 1 (after 1 fix round)", "AssertionError: 1 != 2"}},
		{"failed, no changes", &trakkar.Completion{Outcome: trakkar.OutcomeNoChanges}, failing, trakkar.OutcomeFailed, []string{"verify failed"}},
		{"push failed first", failed("push branch x: denied"), failing, trakkar.OutcomeFailed, []string{"push branch x: denied"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.verifyVerdict(testRun(), tc.comp, tc.vr)
			if got.Outcome != tc.wantOutcome {
				t.Fatalf("outcome %q, want %q", got.Outcome, tc.wantOutcome)
			}
			for _, w := range tc.wantErr {
				if got.Error == nil || !strings.Contains(*got.Error, w) {
					t.Errorf("error %v lacks %q", got.Error, w)
				}
			}
			if tc.wantErr == nil && got.Error != nil {
				t.Errorf("unexpected error %q", *got.Error)
			}
		})
	}
}

func TestMergeRunsKeepsWhatEarlierRunsSpent(t *testing.T) {
	first := &agentRun{result: &workerproto.Result{Outcome: workerproto.OutcomeSucceeded, Summary: "Added the page.", SessionID: "s1",
		Usage: workerproto.Usage{Turns: 3, CostUSD: 0.5, InputTokens: 10, OutputTokens: 20, DurationMS: 1000}}}
	fix := &agentRun{end: endExited, result: &workerproto.Result{Outcome: workerproto.OutcomeSucceeded, Summary: "Fixed the test.", SessionID: "s1",
		Usage: workerproto.Usage{Turns: 2, CostUSD: 0.25, InputTokens: 5, OutputTokens: 7, DurationMS: 500}}}
	got := mergeRuns(first, fix)
	u := got.result.Usage
	if u.Turns != 5 || u.CostUSD != 0.75 || u.InputTokens != 15 || u.OutputTokens != 27 || u.DurationMS != 1500 {
		t.Errorf("usage %+v", u)
	}
	if !strings.HasPrefix(got.result.Summary, "Added the page.") || !strings.Contains(got.result.Summary, "Fixed the test.") {
		t.Errorf("summary %q", got.result.Summary)
	}
	if first.result.Usage.Turns != 3 {
		t.Errorf("mergeRuns changed the earlier run")
	}
	failedFix := mergeRuns(first, &agentRun{end: endExited, result: &workerproto.Result{Outcome: workerproto.OutcomeFailed, Error: "usage limit"}})
	if failedFix.result.Outcome != workerproto.OutcomeFailed || failedFix.result.Error != "usage limit" {
		t.Errorf("a failed fix round must decide the outcome: %+v", failedFix.result)
	}
}

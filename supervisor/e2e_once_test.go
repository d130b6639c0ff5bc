package supervisor_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// exitWithin waits for the process and returns its exit status.
func (p *process) exitWithin(t *testing.T, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(d):
		t.Fatalf("trakkar-agent --once did not exit within %s:\n%s", d, p.out.String())
		return -1
	}
}

// summaryLine is the --once summary line naming the task, or "".
func summaryLine(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), key+" ") {
			return l
		}
	}
	return ""
}

// --once in CI: the exit status says whether every run succeeded, and the
// terminal says how each ended, with the PR or the reason.
func TestOnceExitStatusAndSummary(t *testing.T) {
	parallel(t)
	cases := []struct {
		name, key, desc string
		code            int
		outcome         string
	}{
		{"a failed run exits 1 with its reason", "ONCE-1", "fake:scenario=fail\n", 1, trakkar.OutcomeFailed},
		{"a succeeded run exits 0 with its PR", "ONCE-2", "fake:scenario=edit\n", 0, trakkar.OutcomeSucceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			if _, _, err := e.stand.CreateTask(standin.NewTask{Key: c.key, Title: "Once in CI", Description: c.desc}); err != nil {
				t.Fatal(err)
			}
			p := e.spawn(t, e.serve(t), "--once")
			code := p.exitWithin(t, 120*time.Second)
			out := p.out.String()
			rv, _ := e.lastRun(c.key)
			if rv.Completion == nil || rv.Completion.Outcome != c.outcome {
				t.Fatalf("completion %+v, want outcome %s:\n%s", rv.Completion, c.outcome, out)
			}
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			line := summaryLine(out, c.key)
			if line == "" {
				t.Fatalf("no summary line for %s:\n%s", c.key, out)
			}
			t.Logf("summary line: %s", line)
			want := c.outcome
			if c.outcome == trakkar.OutcomeFailed {
				want = *rv.Completion.Error
			} else if rv.Completion.PullRequest != nil {
				want = rv.Completion.PullRequest.URL
			}
			if !strings.Contains(line, c.outcome) || !strings.Contains(line, want) {
				t.Fatalf("summary line %q: want the outcome %q and %q", line, c.outcome, want)
			}
		})
	}
}

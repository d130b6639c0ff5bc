package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/supervisor"
)

// The summary has a line per run, and any run that did not succeed or end
// without changes makes the pass fail.
func TestOnceSummary(t *testing.T) {
	ok := supervisor.RunResult{TaskKey: "WEB-1", Outcome: "succeeded", PRURL: "https://github.com/acme/web/pull/7", Duration: 90 * time.Second}
	none := supervisor.RunResult{TaskKey: "WEB-2", Outcome: "no_changes", Duration: time.Second}
	failed := supervisor.RunResult{TaskKey: "WEB-3", Outcome: "failed", Reason: "verify failed\nmore", Duration: 2 * time.Second}
	stopped := supervisor.RunResult{TaskKey: "WEB-4", Outcome: "stopped", Reason: "the runner shut down; the workspace is kept"}
	cases := []struct {
		name  string
		runs  []supervisor.RunResult
		lines []string
		fail  bool
	}{
		{"all good", []supervisor.RunResult{ok, none}, []string{"WEB-1  succeeded  https://github.com/acme/web/pull/7  1m30s", "WEB-2  no_changes  -  1s"}, false},
		{"one failed", []supervisor.RunResult{ok, failed}, []string{"WEB-3  failed  verify failed; more  2s"}, true},
		{"one stopped", []supervisor.RunResult{stopped}, []string{"WEB-4  stopped  the runner shut down"}, true},
		{"nothing claimed", nil, []string{"0 run(s)"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := &results{log: zap.NewNop()}
			for _, r := range c.runs {
				rs.add(r)
			}
			var out bytes.Buffer
			err := rs.summarize(&out)
			if (err != nil) != c.fail {
				t.Fatalf("summarize error %v, want failure %v", err, c.fail)
			}
			for _, l := range c.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("summary lacks %q:\n%s", l, out.String())
				}
			}
		})
	}
}

package supervisor

import (
	"fmt"
	"strings"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// The pull request's text: title, body and its verification section.

// prTitle is the task title on one line, or its key when it has none.
func prTitle(t trakkar.Task) string {
	title := oneLine(t.Title, 200)
	if title == "" {
		title = "Trakkar task " + t.Key
	}
	return title
}

// prBodyVerified is the PR body: the task, the agent's summary and the
// verify section.
func prBodyVerified(c trakkar.Claim, summary string, vr *verifyReport, timeout time.Duration) string {
	t := c.Task
	var b strings.Builder
	fmt.Fprintf(&b, "Delegated in Trakkar: [%s](%s) — %s\n\n", t.Key, t.URL, oneLine(t.Title, 200))
	if s := strings.TrimSpace(dropTrailers(summary)); s != "" {
		b.WriteString("## Summary from the agent\n\n")
		b.WriteString(truncate(s, 20000))
		b.WriteString("\n\n")
	}
	b.WriteString(verifySection(vr, timeout))
	fmt.Fprintf(&b, "---\nOpened by trakkar-agent for run `%s` (attempt %d). Review before merging: the change was written by an AI agent.\n",
		c.Run.ID, max(c.Run.Attempt, 1))
	return b.String()
}

// verifySection is the PR body's account of verification; "" without one.
func verifySection(vr *verifyReport, timeout time.Duration) string {
	if vr == nil || len(vr.Rounds) == 0 {
		return ""
	}
	last := vr.last()
	after := ""
	if n := len(vr.Rounds) - 1; n > 0 {
		after = fmt.Sprintf(", after %d fix %s by the agent", n, plural(n, "round", "rounds"))
	}
	var b strings.Builder
	if last.Passed {
		fmt.Fprintf(&b, "## Verification\n\n%s passed in %s%s.\n\n", codeSpan(vr.Command), roundDuration(last.Duration), after)
		return b.String()
	}
	fmt.Fprintf(&b, "## Verification failed\n\n%s %s%s. This pull request stays a draft until it passes.\n\n",
		codeSpan(vr.Command), last.what(timeout), after)
	if t := strings.TrimRight(last.Tail, "\n"); t != "" {
		fence := strings.Repeat("`", max(3, longestRun(t, '`')+1))
		fmt.Fprintf(&b, "Last lines of its output:\n\n%s\n%s\n%s\n\n", fence, t, fence)
	}
	return b.String()
}

// codeSpan quotes s as inline code, whatever backticks it contains.
func codeSpan(s string) string {
	s = oneLine(s, 300)
	ticks := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return ticks + " " + s + " " + ticks
	}
	return ticks + s + ticks
}

func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

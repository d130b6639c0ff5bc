package worker

import (
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/termtext"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// maxText bounds every event text so one runaway block cannot flood the stream.
// It is a safety bound far above Trakkar's 4000-character event limit: the
// supervisor masks secrets in the whole text and only then cuts it to the limit,
// so a secret is never cut short of being recognised.
const maxText = 100_000

// maxSummary bounds the result summary; it may end up in a PR description.
const maxSummary = 20000

// cleanText removes terminal control sequences and control characters (keeping
// newlines and tabs) so nothing the agent prints can drive the viewer's terminal,
// then caps the length at limit runes.
func cleanText(s string, limit int) string {
	return truncate(stripControl(s), limit)
}

// stripControl drops terminal escape sequences and control characters other
// than newline and tab, and repairs invalid UTF-8: the one implementation the
// supervisor uses too.
func stripControl(s string) string { return termtext.Strip(s) }

// ownSecrets masks the model credential the worker was given, so that a cut in
// a short field (a tool summary) cannot leave a prefix of it that the
// supervisor's masking no longer recognises.
var ownSecrets = sync.OnceValue(func() *redact.Redactor {
	return redact.New(os.Getenv("CLAUDE_CODE_OAUTH_TOKEN"), os.Getenv("ANTHROPIC_API_KEY"), os.Getenv("CURSOR_API_KEY"))
})

// truncate masks the worker's own secrets, then caps s at limit runes, marking
// the cut with an ellipsis.
func truncate(s string, limit int) string {
	s = ownSecrets().String(s)
	if limit <= 0 || utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// firstLine returns the first non-blank line of s, trimmed and cleaned, capped at limit runes.
func firstLine(s string, limit int) string {
	s = stripControl(s)
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return truncate(l, limit)
		}
	}
	return ""
}

// oneLine collapses whitespace runs (including newlines) to single spaces.
func oneLine(s string, limit int) string {
	return truncate(strings.Join(strings.Fields(stripControl(s)), " "), limit)
}

// settle completes a provider's result from its classification: the outcome,
// the summary (the final answer in res.Summary, else the agent's prose), the
// error and the worker's exit code and failure class.
func settle(res workerproto.Result, c Classification, prose string) (workerproto.Result, int, string) {
	if c.Class == "" {
		res.Outcome = workerproto.OutcomeSucceeded
		if strings.TrimSpace(res.Summary) == "" {
			res.Summary = prose
		}
		res.Summary = cleanText(res.Summary, maxSummary)
		return res, workerproto.ExitOK, ""
	}
	// On failure the result text is the error itself; the summary keeps what the
	// agent said before it failed.
	res.Outcome = workerproto.OutcomeFailed
	res.Summary = cleanText(prose, maxSummary)
	res.Error = c.Message
	if c.Class == ClassCrashed {
		return res, workerproto.ExitCLICrashed, c.Class
	}
	return res, workerproto.ExitAgentFailed, c.Class
}

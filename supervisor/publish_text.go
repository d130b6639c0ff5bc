package supervisor

import (
	"regexp"
	"strings"

	"github.com/trakkar/trakkar-agent/internal/redact"
)

// publishText prepares the agent's summary for the commit message, the PR and
// the completion: secrets masked in the whole text (before anything cuts it)
// and terminal sequences stripped, since git log and review tools show it.
func (s *Supervisor) publishText(summary string) string {
	return s.redact.String(redact.StripTerminal(summary))
}

// trailerLine matches a git trailer with a hyphenated token (Co-authored-by,
// Signed-off-by, Change-Id, Trakkar-Run, …). Forges and git act on these, so
// the agent may not add them; ordinary "Note: …" prose is kept.
var trailerLine = regexp.MustCompile(`^\s*[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\s*:`)

// dropTrailers removes trailer lines the agent wrote into its summary.
func dropTrailers(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !trailerLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

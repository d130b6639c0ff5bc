package supervisor

import (
	"context"
	"regexp"
	"strings"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/secretscan"
	"github.com/trakkar/trakkar-agent/internal/termtext"
)

// publishText prepares the agent's summary for the commit message, the PR and
// the completion: secrets masked in the whole text (before anything cuts it)
// and terminal sequences stripped, since git log and review tools show it.
func (s *Supervisor) publishText(summary string) string {
	return s.redact.String(termtext.Strip(summary))
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

// refuseSecrets scans the staged change (names, link targets and contents, read
// from the worktree without following links) and the names of the branch's
// earlier commits for every secret the runner holds. A hit unstages and returns
// the failure reason naming the paths (masked); "" means the change is clean.
func (s *Supervisor) refuseSecrets(ctx context.Context, r *run, ws *workspace, staged, committed []hostgit.Change) string {
	changes := append([]hostgit.Change(nil), staged...)
	for _, c := range committed {
		// Earlier commits were scanned when they were made; their files may be
		// gone from the worktree now, so only their names are checked.
		changes = append(changes, hostgit.Change{Path: c.Path, Status: "D"})
	}
	found := secretscan.Scan(ws.wt.Path, changes, s.redact)
	if len(found) == 0 {
		return ""
	}
	reason := s.redact.String(secretscan.Error(found))
	if err := s.git.Unstage(ctx, ws.wt); err != nil {
		r.log.Warn("unstage refused change", zap.Error(err))
	}
	r.log.Warn("change refused: it holds a secret", zap.Int("paths", len(found)))
	return reason
}

package supervisor

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
	"github.com/trakkar/trakkar-agent/internal/termtext"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// publish commits the agent's change on the host and pushes it / opens the PR
// as configured. Only called after the container has exited. vr, when the
// agent has a verify command, goes into the PR; a failed verify opens a draft.
// It returns nil when the lease was lost (or the supervisor aborted) before
// the push or the PR: nothing may be reported then.
func (s *Supervisor) publish(ctx context.Context, r *run, ws *workspace, res *workerproto.Result, vr *verifyReport) *trakkar.Completion {
	r.setState(trakkar.StatePublishing)
	summary := ""
	if res != nil {
		summary = s.publishText(res.Summary)
	}
	staged, err := s.git.StageAll(ctx, ws.wt)
	if err != nil {
		return s.fail(r, failReason{kind: reasonPublish, msg: "stage the agent's change", silent: true}, err)
	}
	committed, err := s.git.ChangesSince(ctx, ws.wt, ws.wt.Base)
	if err != nil {
		// Nothing was checked: drop the staged objects rather than keep them.
		if err := s.git.Unstage(ctx, ws.wt); err != nil {
			r.log.Warn("unstage unchecked change", zap.Error(err))
		}
		return s.fail(r, failReason{kind: reasonPublish, msg: "inspect the branch", silent: true}, err)
	}
	if rep := importpolicy.Check(append(staged, committed...), s.cfg.Policy); rep.Err() != nil {
		if err := s.git.Unstage(ctx, ws.wt); err != nil {
			r.log.Warn("unstage refused change", zap.Error(err))
		}
		return s.fail(r, refused("the change was refused by the import policy"), rep.Err())
	}
	if reason := s.refuseSecrets(ctx, r, ws, staged, committed); reason != "" {
		return s.fail(r, refused(""), errText(reason))
	}
	if len(staged) == 0 && len(committed) == 0 {
		r.status("The agent made no changes")
		r.rec.Discard = true
		return &trakkar.Completion{Outcome: trakkar.OutcomeNoChanges, Summary: summary}
	}
	if len(staged) > 0 {
		sha, err := s.git.CommitStaged(ctx, ws.wt, s.redact.String(commitMessage(r.claim, summary)))
		if err != nil {
			return s.fail(r, failReason{kind: reasonPublish, msg: "commit the agent's change", silent: true}, err)
		}
		r.status("Committed %s on %s (%d files)", shortID(sha), ws.wt.Branch, len(staged))
	}

	comp := &trakkar.Completion{Outcome: trakkar.OutcomeSucceeded, Summary: summary}
	if s.cfg.Publish == PublishLocal {
		r.status("Kept on local branch %s (not pushed)", ws.wt.Branch)
		r.rec.Discard = true
		return comp
	}
	// The fresh-lease rule (docs/trakkar-agent-api.md): no push and no PR
	// without a lease Trakkar confirmed within lease/3. When the run turns out
	// lost, the commit stays in the kept workspace and nothing is reported.
	if !s.holdFreshLease(ctx, r) {
		return nil
	}
	// A plain refspec: fast-forward only. A rejected push (another runner
	// moved the branch) fails the run and keeps the workspace; never forced.
	if err := s.git.Push(ctx, s.cfg.Repo, s.cfg.Remote, ws.wt.Branch, s.auth()); err != nil {
		return s.fail(r, failReason{kind: reasonPublish, msg: "push branch " + ws.wt.Branch, event: "Push failed"}, err)
	}
	r.status("Pushed branch %s", ws.wt.Branch)
	if s.cfg.Publish == PublishBranch {
		r.rec.Discard = true
		return comp
	}

	if !s.holdFreshLease(ctx, r) {
		return nil
	}
	pr, err := s.openPR(ctx, r, ws, summary, vr)
	if err != nil {
		return s.fail(r, failReason{kind: reasonPublish, msg: "open pull request", event: "Opening the pull request failed"}, err)
	}
	r.emit(trakkar.EventStatus, "Pull request opened: "+pr.URL, map[string]any{"url": pr.URL, "number": pr.Number})
	comp.PullRequest = &trakkar.PullRequest{URL: pr.URL, Number: pr.Number, Branch: ws.wt.Branch, Draft: pr.Draft}
	r.rec.Discard = true
	return comp
}

// openPR reuses an open PR for the branch (a follow-up, or a retry after a
// crash) and creates one otherwise, so a task never gets two.
func (s *Supervisor) openPR(ctx context.Context, r *run, ws *workspace, summary string, vr *verifyReport) (*forge.PR, error) {
	existing, err := s.forge.FindOpenPR(ctx, s.cfg.ForgeRepo, ws.wt.Branch)
	if err != nil {
		return nil, fmt.Errorf("look up open pull request: %w", err)
	}
	if existing != nil {
		return existing, nil
	}
	t := r.claim.Task
	return s.forge.CreatePR(ctx, s.cfg.ForgeRepo, forge.NewPR{
		Title: s.redact.String(termtext.Strip(prTitle(t))),
		Body:  s.redact.String(prBodyVerified(r.claim, summary, vr, s.cfg.VerifyTimeout)),
		Head:  ws.wt.Branch,
		Base:  ws.base,
		Draft: vr.failed(),
	})
}

func commitMessage(c trakkar.Claim, summary string) string {
	t := c.Task
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n\n", t.Key, oneLine(t.Title, 150))
	if s := strings.TrimSpace(dropTrailers(summary)); s != "" {
		b.WriteString(truncate(s, 4000))
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, "Trakkar-Task: %s\nTrakkar-Run: %s\n", t.URL, c.Run.ID)
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

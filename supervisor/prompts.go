package supervisor

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// Every prompt the agent gets: the task, a follow-up in the task chat, and a
// failed verify command to fix.

// buildPrompt turns the task into the agent's instructions.
func buildPrompt(c trakkar.Claim) string {
	t := c.Task
	var b strings.Builder
	fmt.Fprintf(&b, "Task %s: %s\n", t.Key, t.Title)
	if t.URL != "" {
		fmt.Fprintf(&b, "Link: %s\n", t.URL)
	}
	if d := strings.TrimSpace(t.Description); d != "" {
		b.WriteString("\n")
		b.WriteString(d)
		b.WriteString("\n")
	}
	if len(t.Messages) > 0 {
		b.WriteString("\nConversation on the task so far (oldest first):\n")
		for _, m := range t.Messages {
			fmt.Fprintf(&b, "- %s (%s): %s\n", m.Author.Name, m.Author.Kind, strings.TrimSpace(m.Body))
		}
	}
	if c.Run.Kind == trakkar.KindFollowUp && c.Run.MessageID != nil {
		for _, m := range t.Messages {
			if m.ID == *c.Run.MessageID {
				fmt.Fprintf(&b, "\nContinue the work and address this latest message:\n%s\n", strings.TrimSpace(m.Body))
			}
		}
	}
	b.WriteString("\nWork in the current directory, a checkout of the repository on the task's branch. " +
		"Leave your changes as files: the runner commits, pushes and opens the pull request after you finish. " +
		"End with a short summary of what you changed.\n")
	return b.String()
}

// planJob builds the agent's job. With resume it continues the task's
// conversation with resumePrompt when that conversation is still here;
// otherwise the agent starts fresh with freshPrompt, which carries the whole
// task. It reports whether the job resumes.
func (s *Supervisor) planJob(ws *workspace, resume bool, resumePrompt, freshPrompt string) (workerproto.Job, bool) {
	job := workerproto.Job{Provider: s.cfg.Provider}
	if s.agent.Model != nil {
		job.Model = *s.agent.Model
	}
	if prev := loadSession(ws); resume && sessionUsable(ws, prev, s.cfg.Provider) {
		job.SessionID, job.Resume, job.Prompt = prev.ID, true, resumePrompt
		return job, true
	}
	job.Prompt = freshPrompt
	if s.cfg.Provider == ProviderClaude {
		// Our own id, so the conversation can be found again (see docs/agent-clis.md §1.8).
		job.SessionID = uuid.NewString()
	}
	return job, false
}

// taskJob is the job of a run's first agent: a follow-up resumes the task's
// conversation; anything else, or a follow-up whose conversation is gone,
// starts fresh with the whole chat history in its prompt.
func (s *Supervisor) taskJob(r *run, ws *workspace) (workerproto.Job, bool) {
	return s.planJob(ws, r.claim.Run.Kind == trakkar.KindFollowUp, followUpPrompt(r.claim), buildPrompt(r.claim))
}

// fixJob resumes the task's conversation with prompt; without a usable one
// the agent starts over with the task and the failure.
func (s *Supervisor) fixJob(r *run, ws *workspace, prompt string) (workerproto.Job, bool) {
	return s.planJob(ws, true, prompt, buildPrompt(r.claim)+"\nYour earlier changes are in the working tree.\n\n"+prompt)
}

// followUpPrompt is what a resumed agent is told: the agent already has the
// task and its own earlier work in context.
func followUpPrompt(c trakkar.Claim) string {
	var b strings.Builder
	b.WriteString("The person replied in the task chat")
	if c.Run.MessageID != nil {
		for _, m := range c.Task.Messages {
			if m.ID == *c.Run.MessageID {
				fmt.Fprintf(&b, " (%s):\n%s\n", m.Author.Name, strings.TrimSpace(m.Body))
			}
		}
	} else {
		b.WriteString(".\n")
	}
	b.WriteString("\nContinue the task from where you stopped and address this message. " +
		"Leave your changes as files; the runner commits and updates the pull request. " +
		"End with a short summary of what you changed.\n")
	return b.String()
}

// fixPrompt tells the agent what failed. The output is indented so that it
// reads as a quotation, not as instructions.
func fixPrompt(cmd string, v verifyRound, timeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The runner checked your change with the verify command and it failed.\n\nCommand: %s\nResult: it %s\n", cmd, v.what(timeout))
	if t := strings.TrimRight(v.Tail, "\n"); t != "" {
		b.WriteString("\nLast lines of its output:\n")
		for _, line := range strings.Split(t, "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	b.WriteString("\nFind the cause and fix it in the working tree; the runner runs the command again when you finish. " +
		"Do not weaken, skip or delete checks to make them pass. End with a short summary of what you changed.\n")
	return b.String()
}

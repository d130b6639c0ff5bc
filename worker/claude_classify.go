package worker

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Failure classes reported with Classify (and as data.class on the final error event).
const (
	ClassAuth            = "auth"
	ClassUsageLimit      = "usage_limit"
	ClassCredit          = "credit"
	ClassMaxTurns        = "max_turns"
	ClassMaxBudget       = "max_budget"
	ClassSessionNotFound = "session_not_found"
	ClassCrashed         = "crashed"
	ClassAgentError      = "agent_error"
)

// ClaudeRun is what Classify looks at: the first result line, the synthetic
// assistant error, and how the process ended.
type ClaudeRun struct {
	HaveResult        bool
	IsError           bool
	Subtype           string
	ResultText        string
	Errors            []string
	APIErrorStatus    int
	TerminalReason    string
	NumTurns          int
	AssistantError    string // top-level "error" of an assistant line, e.g. rate_limit
	SyntheticText     string // text of the synthetic API-error assistant message
	RateLimitResetsAt int64  // resetsAt (unix seconds) of a rejected rate_limit_event
	ExitCode          int    // -1 when killed by a signal
	Stderr            string // tail of stderr
}

// Classification is one line a person can act on, and a machine-readable class.
// Class is empty when the run succeeded.
type Classification struct {
	Class   string
	Message string
}

const (
	authHint            = "Claude is not logged in or the credential is invalid: set CLAUDE_CODE_OAUTH_TOKEN (claude setup-token) or ANTHROPIC_API_KEY"
	sessionNotFoundText = "no conversation found with session id"
)

var (
	authPatterns   = []string{"not logged in", "invalid api key", "failed to authenticate", "invalid auth token"}
	creditPatterns = []string{"credit balance is too low", "credit balance too low"}
	legacyLimitRE  = regexp.MustCompile(`(?i)usage limit reached\|(\d{9,12})`)
	limitTextRE    = regexp.MustCompile(`(?i)you've hit your [^\n]*limit|usage limit reached`)
	resetsRE       = regexp.MustCompile(`(?i)\bresets\s+([^\n]+)`)
	maxTurnsRE     = regexp.MustCompile(`(?i)maximum number of turns \((\d+)\)`)
)

// Classify decides whether a claude run failed and why. Text patterns are matched
// only on error results and stderr: the model may write the same words in a
// successful answer (docs/agent-clis.md §4).
func Classify(r ClaudeRun) Classification {
	if !r.HaveResult {
		return classifyNoResult(r)
	}
	if !r.IsError {
		return Classification{}
	}
	texts := append([]string{r.ResultText, r.SyntheticText}, r.Errors...)
	all := strings.ToLower(strings.Join(texts, "\n"))
	switch {
	case strings.Contains(all, sessionNotFoundText):
		return Classification{ClassSessionNotFound, "the session to resume was not found"}
	case r.APIErrorStatus == 401 || r.AssistantError == "authentication_failed" || containsAny(all, authPatterns):
		return Classification{ClassAuth, authHint}
	case r.AssistantError == "billing_error" || containsAny(all, creditPatterns):
		return Classification{ClassCredit, "Anthropic API credit balance is too low"}
	case r.AssistantError == "rate_limit" || r.APIErrorStatus == 429 || limitTextRE.MatchString(all):
		return Classification{ClassUsageLimit, usageLimitMessage(texts, r.RateLimitResetsAt)}
	case r.Subtype == "error_max_turns" || r.TerminalReason == "max_turns":
		n := r.NumTurns
		if m := maxTurnsRE.FindStringSubmatch(all); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		return Classification{ClassMaxTurns, fmt.Sprintf("the agent hit the maximum number of turns (%d)", n)}
	case r.Subtype == "error_max_budget_usd":
		return Classification{ClassMaxBudget, "the agent hit its spending limit (--max-budget-usd)"}
	}
	msg := ""
	for _, t := range texts {
		if t = oneLine(t, 1000); t != "" {
			msg = t
			break
		}
	}
	if len(r.Errors) > 1 {
		msg = oneLine(strings.Join(r.Errors, "; "), 1000)
	}
	if msg == "" {
		msg = "claude reported an error"
		if r.Subtype != "" {
			msg += " (" + oneLine(r.Subtype, 60) + ")"
		}
	}
	return Classification{ClassAgentError, msg}
}

func classifyNoResult(r ClaudeRun) Classification {
	if r.ExitCode == 0 {
		// Anthropic's own CI treats exit 0 as success; the result line can be
		// lost when output is cut at exit.
		return Classification{}
	}
	lower := strings.ToLower(r.Stderr)
	switch {
	case strings.Contains(lower, sessionNotFoundText):
		return Classification{ClassSessionNotFound, "the session to resume was not found"}
	case containsAny(lower, authPatterns):
		return Classification{ClassAuth, authHint}
	}
	var msg string
	if r.ExitCode < 0 {
		msg = "claude was killed by a signal"
	} else {
		msg = fmt.Sprintf("claude exited with status %d", r.ExitCode)
	}
	if tail := strings.TrimSpace(r.Stderr); tail != "" {
		msg += ": " + tail
	} else {
		msg += " without output on stderr"
	}
	return Classification{ClassCrashed, msg}
}

func usageLimitMessage(texts []string, resetsAt int64) string {
	for _, t := range texts {
		if m := legacyLimitRE.FindStringSubmatch(t); m != nil {
			if sec, err := strconv.ParseInt(m[1], 10, 64); err == nil {
				return "Claude usage limit reached; resets " + formatEpoch(sec)
			}
		}
	}
	for _, t := range texts {
		if m := resetsRE.FindStringSubmatch(t); m != nil {
			when := m[1]
			// The subscription variant runs a "/login to switch…" hint into the zone.
			if i := strings.Index(when, "/login"); i > 0 {
				when = when[:i]
			}
			if when = strings.TrimRight(oneLine(when, 100), " ."); when != "" {
				return "Claude usage limit reached; resets " + when
			}
		}
	}
	if resetsAt > 0 {
		return "Claude usage limit reached; resets " + formatEpoch(resetsAt)
	}
	return "Claude usage limit reached"
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

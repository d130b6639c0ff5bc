// Package trakkar speaks the Trakkar agent API (protocol 1). Every wire detail of
// the contract lives in this package so that a change on Trakkar's side is a change
// in one place.
package trakkar

import "time"

// Protocol is the value of the Trakkar-Agent-Protocol header.
const Protocol = "1"

// Agent is the agent's settings as configured in Trakkar.
type Agent struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	Provider       string  `json:"provider"`
	MaxConcurrency *int    `json:"max_concurrency"`
	VerifyCommand  *string `json:"verify_command"`
	Model          *string `json:"model"`
	BranchPrefix   string  `json:"branch_prefix,omitempty"`
}

// Author is who wrote a chat message.
type Author struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // user | agent
}

// Message is one entry of the task chat.
type Message struct {
	ID        string    `json:"id"`
	Author    Author    `json:"author"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// PullRequest is the PR linked to a task, or reported on completion.
type PullRequest struct {
	URL    string `json:"url"`
	Number int    `json:"number"`
	Branch string `json:"branch"`
	Draft  bool   `json:"draft,omitempty"`
}

// Task is the delegated work item.
type Task struct {
	ID          string       `json:"id"`
	Key         string       `json:"key"`
	Title       string       `json:"title"`
	Description string       `json:"description"`
	URL         string       `json:"url"`
	Labels      []string     `json:"labels"`
	Priority    string       `json:"priority"`
	BaseBranch  *string      `json:"base_branch"`
	Messages    []Message    `json:"messages"`
	PullRequest *PullRequest `json:"pull_request"`
}

// Run kinds.
const (
	KindStart    = "start"
	KindFollowUp = "follow_up"
)

// Run statuses.
const (
	StatusQueued        = "queued"
	StatusClaimed       = "claimed"
	StatusRunning       = "running"
	StatusStopRequested = "stop_requested"
	StatusSucceeded     = "succeeded"
	StatusFailed        = "failed"
	StatusStopped       = "stopped"
)

// Run is one attempt of the agent at a task.
type Run struct {
	ID        string    `json:"id"`
	TaskID    string    `json:"task_id"`
	Kind      string    `json:"kind"`
	MessageID *string   `json:"message_id"`
	Status    string    `json:"status"`
	Attempt   int       `json:"attempt"`
	CreatedAt time.Time `json:"created_at"`
}

// Runner identifies this runner instance when claiming. Clone is an extra
// field, which the contract allows (unknown fields are ignored): with
// Hostname it tells which host and clone of a fleet holds a run.
type Runner struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	Clone    string `json:"clone,omitempty"`
}

// Claim is the answer to a successful claim.
type Claim struct {
	Run          Run  `json:"run"`
	Task         Task `json:"task"`
	LeaseSeconds int  `json:"lease_seconds"`
}

// Heartbeat states.
const (
	StatePreparing  = "preparing"
	StateRunning    = "running"
	StateVerifying  = "verifying"
	StatePublishing = "publishing"
)

// HeartbeatReply is Trakkar's answer to a heartbeat.
type HeartbeatReply struct {
	StopRequested bool `json:"stop_requested"`
	LeaseSeconds  int  `json:"lease_seconds"`
}

// Event types.
const (
	EventStatus  = "status"
	EventMessage = "message"
	EventTool    = "tool"
	EventLog     = "log"
	EventError   = "error"
)

// MaxEventText is the longest text the contract accepts in one event.
const MaxEventText = 4000

// Limits of one events request.
const (
	MaxEventsPerRequest = 500
	MaxEventsBytes      = 1 << 20
)

// Event is one progress item of a run.
type Event struct {
	Seq  int64          `json:"seq"`
	At   time.Time      `json:"at"`
	Type string         `json:"type"`
	Text string         `json:"text"`
	Data map[string]any `json:"data,omitempty"`
}

// Outcomes of a completed run.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeNoChanges = "no_changes"
	OutcomeFailed    = "failed"
	OutcomeStopped   = "stopped"
)

// Usage is what the agent spent.
type Usage struct {
	DurationMS   int64   `json:"duration_ms"`
	Turns        int     `json:"turns"`
	CostUSD      float64 `json:"cost_usd"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
}

// Completion is the body of the complete call.
type Completion struct {
	Outcome        string       `json:"outcome"`
	Summary        string       `json:"summary"`
	Error          *string      `json:"error"`
	PullRequest    *PullRequest `json:"pull_request"`
	AgentSessionID *string      `json:"agent_session_id"`
	Usage          Usage        `json:"usage"`
}

// ErrorBody is the error envelope of every non-2xx answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Package standin is an in-memory stand-in for Trakkar: it serves the agent API
// contract (protocol 1) to runners and a small person side (JSON API and a live
// HTML page) to delegate tasks, chat and press Stop. End-to-end tests use it as a
// library; `trakkar-agent dev-server` serves it.
//
// Leases are checked lazily: every HTTP request and every Go API call first
// re-queues runs whose lease has run out, and a waiting long poll also wakes at
// the earliest lease deadline. There is no background goroutine, so there is
// nothing to start; Close only releases waiting long polls.
package standin

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// Errors of the Go API; the person JSON API maps them to 404, 409 and 400.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid input")
)

// Defaults of Options.
const (
	DefaultToken        = "trk_agent_dev"
	DefaultLeaseSeconds = 60
	DefaultPublicURL    = "http://127.0.0.1:8484"
)

// userName is the chat author of messages posted through the person side.
const userName = "Local user"

// Options configure a Server. The zero value is usable.
type Options struct {
	Token        string        // accepted agent token; default "trk_agent_dev"
	Agent        trakkar.Agent // returned by /v1/agent/me; default: agt_dev, "Local agent", claude_code, "trakkar/"
	LeaseSeconds int           // default 60
	PublicURL    string        // base for task URLs (PublicURL + "/tasks/" + key); default "http://127.0.0.1:8484"
	Logger       *zap.Logger
	Now          func() time.Time // default time.Now
}

// NewTask is what a person fills in to delegate a task.
type NewTask struct {
	Key, Title, Description string
	BaseBranch              *string
	Labels                  []string
	Priority                string
}

// TaskView is a snapshot of a task and its runs, oldest run first.
type TaskView struct {
	Task trakkar.Task `json:"task"`
	Runs []RunView    `json:"runs"`
}

// RunView is a snapshot of one run as the server sees it.
type RunView struct {
	Run        trakkar.Run         `json:"run"`
	RunnerID   string              `json:"runner_id"`
	Events     []trakkar.Event     `json:"events"`     // every attempt's events, by attempt then seq
	Completion *trakkar.Completion `json:"completion"` // nil until completed
	Heartbeats int                 `json:"heartbeats"`
	LastState  string              `json:"last_state"` // last heartbeat state
	Claims     []ClaimView         `json:"claims"`     // every attempt's claim, oldest first
}

// ClaimView is one winning claim of a run: which runner, host and clone took
// which attempt.
type ClaimView struct {
	Attempt  int    `json:"attempt"`
	RunnerID string `json:"runner_id"`
	Hostname string `json:"hostname"`
	Clone    string `json:"clone,omitempty"`
}

// Server is the stand-in. All state is guarded by mu; callers only ever get copies.
type Server struct {
	opts  Options
	log   *zap.Logger
	now   func() time.Time
	lease time.Duration

	mu       sync.Mutex
	tasks    map[string]*taskState // by id
	byKey    map[string]*taskState
	order    []*taskState // creation order
	runs     map[string]*runState
	runCount int64
	wake     chan struct{} // closed and replaced whenever a run becomes queued
	fault    func(r *http.Request) (status int, inject bool)
	closed   bool
}

type taskState struct {
	task trakkar.Task
	runs []*runState
}

type runState struct {
	run        trakkar.Run
	order      int64 // creation order, for "oldest first"
	task       *taskState
	runnerID   string // current or last owner
	held       bool   // a runner holds the lease
	leaseUntil time.Time
	// Events are kept per run, as the contract says: seq starts at 1 for the
	// run, so a runner that claims a re-queued run continues after acked_seq,
	// and a seq it gives again is dropped as a duplicate.
	events     *eventLog
	completion *trakkar.Completion
	heartbeats int
	lastState  string
	claims     []ClaimView
}

type eventLog struct {
	bySeq map[int64]trakkar.Event
	acked int64 // highest contiguous seq stored from 1
}

// New returns a stand-in with opts' defaults filled in.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.Agent.ID == "" {
		opts.Agent.ID = "agt_dev"
	}
	if opts.Agent.Name == "" {
		opts.Agent.Name = "Local agent"
	}
	if opts.Agent.Provider == "" {
		opts.Agent.Provider = "claude_code"
	}
	if opts.Agent.BranchPrefix == "" {
		opts.Agent.BranchPrefix = "trakkar/"
	}
	if opts.LeaseSeconds <= 0 {
		opts.LeaseSeconds = DefaultLeaseSeconds
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if opts.PublicURL == "" {
		opts.PublicURL = DefaultPublicURL
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:  opts,
		log:   opts.Logger.Named("standin"),
		now:   opts.Now,
		lease: time.Duration(opts.LeaseSeconds) * time.Second,
		tasks: map[string]*taskState{},
		byKey: map[string]*taskState{},
		runs:  map[string]*runState{},
		wake:  make(chan struct{}),
	}
}

// Handler serves the agent API under /v1/agent/, the person JSON API under /api/
// and the HTML page at / and /tasks/{key}.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/agent/", s.agentHandler())
	s.registerPerson(mux)
	return mux
}

// Close releases every waiting long poll (they answer with what is queued now).
// The server keeps working; later long polls answer at once.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.notifyLocked()
}

// CreateTask creates a task and delegates it: a "start" run is queued.
func (s *Server) CreateTask(t NewTask) (trakkar.Task, trakkar.Run, error) {
	key := strings.TrimSpace(t.Key)
	if err := validKey(key); err != nil {
		return trakkar.Task{}, trakkar.Run{}, fmt.Errorf("create task: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if _, dup := s.byKey[key]; dup {
		return trakkar.Task{}, trakkar.Run{}, fmt.Errorf("create task: key %q already exists: %w", key, ErrConflict)
	}
	labels := append([]string{}, t.Labels...)
	ts := &taskState{task: trakkar.Task{
		ID:          newID("tsk_"),
		Key:         key,
		Title:       t.Title,
		Description: t.Description,
		URL:         s.opts.PublicURL + "/tasks/" + key,
		Labels:      labels,
		Priority:    t.Priority,
		BaseBranch:  copyPtr(t.BaseBranch),
		Messages:    []trakkar.Message{},
	}}
	s.tasks[ts.task.ID] = ts
	s.byKey[key] = ts
	s.order = append(s.order, ts)
	rs := s.queueRunLocked(ts, trakkar.KindStart, nil)
	s.log.Info("task created", zap.String("task_id", ts.task.ID), zap.String("task_key", key), zap.String("run_id", rs.run.ID))
	return copyTask(ts.task), copyRun(rs.run), nil
}

// PostMessage appends a person's chat message to the task and queues a
// "follow_up" run for it. It fails while the task has a run that has not ended
// (queued, claimed, running or stop_requested): a task has one run at a time.
func (s *Server) PostMessage(taskID, body string) (trakkar.Run, error) {
	if strings.TrimSpace(body) == "" {
		return trakkar.Run{}, fmt.Errorf("post message: empty body: %w", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ts, ok := s.tasks[taskID]
	if !ok {
		return trakkar.Run{}, fmt.Errorf("post message: task %q: %w", taskID, ErrNotFound)
	}
	if rs := activeRun(ts); rs != nil {
		return trakkar.Run{}, fmt.Errorf("post message: task %s has run %s in status %s: %w", ts.task.Key, rs.run.ID, rs.run.Status, ErrConflict)
	}
	msg := trakkar.Message{
		ID:        newID("msg_"),
		Author:    trakkar.Author{Name: userName, Kind: "user"},
		Body:      body,
		CreatedAt: s.now().UTC(),
	}
	ts.task.Messages = append(ts.task.Messages, msg)
	rs := s.queueRunLocked(ts, trakkar.KindFollowUp, &msg.ID)
	s.log.Info("follow-up queued", zap.String("task_id", taskID), zap.String("run_id", rs.run.ID), zap.String("message_id", msg.ID))
	return copyRun(rs.run), nil
}

// Stop is the person's Stop button. A held run becomes stop_requested (the next
// heartbeat answers stop_requested:true); a queued run is cancelled (status
// stopped; a later claim gets 410 gone). Stopping a run already stop_requested is
// a no-op; a task without an unfinished run is a conflict.
func (s *Server) Stop(taskID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ts, ok := s.tasks[taskID]
	if !ok {
		return fmt.Errorf("stop: task %q: %w", taskID, ErrNotFound)
	}
	rs := activeRun(ts)
	if rs == nil {
		return fmt.Errorf("stop: task %s has no active run: %w", ts.task.Key, ErrConflict)
	}
	switch rs.run.Status {
	case trakkar.StatusQueued:
		rs.run.Status = trakkar.StatusStopped
	case trakkar.StatusClaimed, trakkar.StatusRunning:
		rs.run.Status = trakkar.StatusStopRequested
	}
	s.log.Info("stop requested", zap.String("task_id", taskID), zap.String("run_id", rs.run.ID), zap.String("status", rs.run.Status))
	return nil
}

// SetTaskPR sets (or with nil clears) the task's pull request. Unknown ids are ignored.
func (s *Server) SetTaskPR(taskID string, pr *trakkar.PullRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts, ok := s.tasks[taskID]; ok {
		ts.task.PullRequest = copyPtr(pr)
	}
}

// Task returns a snapshot of the task with this id.
func (s *Server) Task(taskID string) (TaskView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ts, ok := s.tasks[taskID]
	if !ok {
		return TaskView{}, false
	}
	return taskView(ts), true
}

// TaskByKey returns a snapshot of the task with this key.
func (s *Server) TaskByKey(key string) (TaskView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ts, ok := s.byKey[key]
	if !ok {
		return TaskView{}, false
	}
	return taskView(ts), true
}

// Tasks returns snapshots of all tasks in creation order.
func (s *Server) Tasks() []TaskView {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	out := make([]TaskView, 0, len(s.order))
	for _, ts := range s.order {
		out = append(out, taskView(ts))
	}
	return out
}

// Run returns a snapshot of the run with this id.
func (s *Server) Run(runID string) (RunView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	rs, ok := s.runs[runID]
	if !ok {
		return RunView{}, false
	}
	return runView(rs), true
}

// SetFault installs f, called for every agent-API request before anything else;
// inject=true answers with that status and a JSON error body instead of handling
// the request (429 also gets "Retry-After: 1"; a status outside 400..599 becomes
// 500). f may read r.Body: the handler still sees the whole body. f runs before
// auth and only for the agent API. nil clears the fault.
func (s *Server) SetFault(f func(r *http.Request) (status int, inject bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// ExpireLeases re-queues every run whose lease has run out, now.
func (s *Server) ExpireLeases() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
}

// expireLocked re-queues held runs whose lease ran out, with attempt+1 and no
// owner. A run a person asked to stop is not re-queued but ends as stopped.
func (s *Server) expireLocked() {
	now := s.now()
	requeued := false
	for _, rs := range s.runs {
		if !rs.held || now.Before(rs.leaseUntil) {
			continue
		}
		rs.held = false
		if rs.run.Status == trakkar.StatusStopRequested {
			rs.run.Status = trakkar.StatusStopped
			s.log.Info("lease expired on a stopping run; run stopped", zap.String("run_id", rs.run.ID), zap.String("runner_id", rs.runnerID))
			continue
		}
		rs.run.Status = trakkar.StatusQueued
		rs.run.Attempt++
		s.log.Info("lease expired; run re-queued", zap.String("run_id", rs.run.ID), zap.String("runner_id", rs.runnerID), zap.Int("attempt", rs.run.Attempt))
		rs.runnerID = ""
		rs.lastState = ""
		requeued = true
	}
	if requeued {
		s.notifyLocked()
	}
}

// nextLeaseLocked is how long until the earliest lease runs out (ok=false: none held).
func (s *Server) nextLeaseLocked() (time.Duration, bool) {
	now := s.now()
	var next time.Duration
	found := false
	for _, rs := range s.runs {
		if !rs.held {
			continue
		}
		if d := rs.leaseUntil.Sub(now); !found || d < next {
			next, found = d, true
		}
	}
	return next, found
}

func (s *Server) queueRunLocked(ts *taskState, kind string, messageID *string) *runState {
	s.runCount++
	rs := &runState{
		run: trakkar.Run{
			ID:        newID("run_"),
			TaskID:    ts.task.ID,
			Kind:      kind,
			MessageID: copyPtr(messageID),
			Status:    trakkar.StatusQueued,
			Attempt:   1,
			CreatedAt: s.now().UTC(),
		},
		order:  s.runCount,
		task:   ts,
		events: &eventLog{bySeq: map[int64]trakkar.Event{}},
	}
	s.runs[rs.run.ID] = rs
	ts.runs = append(ts.runs, rs)
	s.notifyLocked()
	return rs
}

// queuedLocked returns up to limit queued runs, oldest first.
func (s *Server) queuedLocked(limit int) []trakkar.Run {
	var queued []*runState
	for _, rs := range s.runs {
		if rs.run.Status == trakkar.StatusQueued {
			queued = append(queued, rs)
		}
	}
	sort.Slice(queued, func(i, j int) bool { return queued[i].order < queued[j].order })
	if len(queued) > limit {
		queued = queued[:limit]
	}
	out := make([]trakkar.Run, 0, len(queued))
	for _, rs := range queued {
		out = append(out, copyRun(rs.run))
	}
	return out
}

// notifyLocked wakes every waiting long poll.
func (s *Server) notifyLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// activeRun is the task's run that has not ended, if any.
func activeRun(ts *taskState) *runState {
	for _, rs := range ts.runs {
		if !ended(rs.run.Status) {
			return rs
		}
	}
	return nil
}

func ended(status string) bool {
	switch status {
	case trakkar.StatusSucceeded, trakkar.StatusFailed, trakkar.StatusStopped:
		return true
	}
	return false
}

// validKey keeps keys usable as one URL path segment.
func validKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty task key: %w", ErrInvalid)
	}
	if len(key) > 64 {
		return fmt.Errorf("task key longer than 64 characters: %w", ErrInvalid)
	}
	for _, c := range key {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("task key %q: only letters, digits, '-', '_' and '.' are allowed: %w", key, ErrInvalid)
		}
	}
	return nil
}

func newID(prefix string) string {
	// Random rather than counted, so a runner's journal from before a dev-server
	// restart can never name a different run.
	return prefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
}

func taskView(ts *taskState) TaskView {
	v := TaskView{Task: copyTask(ts.task), Runs: make([]RunView, 0, len(ts.runs))}
	for _, rs := range ts.runs {
		v.Runs = append(v.Runs, runView(rs))
	}
	return v
}

func runView(rs *runState) RunView {
	v := RunView{
		Run:        copyRun(rs.run),
		RunnerID:   rs.runnerID,
		Events:     []trakkar.Event{},
		Completion: copyCompletion(rs.completion),
		Heartbeats: rs.heartbeats,
		LastState:  rs.lastState,
		Claims:     append([]ClaimView{}, rs.claims...),
	}
	for _, e := range rs.events.bySeq {
		v.Events = append(v.Events, copyEvent(e))
	}
	sort.Slice(v.Events, func(i, j int) bool { return v.Events[i].Seq < v.Events[j].Seq })
	return v
}

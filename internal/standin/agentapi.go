package standin

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// RunnerIDHeader names the runner on heartbeat, events and complete. Without
// it "not the owner" can only be told when the run is no longer held (for
// example re-queued); with it, a runner whose run was re-claimed by another
// runner also gets 409 lease_lost.
const RunnerIDHeader = trakkar.RunnerIDHeader

// Long-poll and listing limits of GET /v1/agent/runs/queued.
const (
	maxWaitSeconds = 30
	defaultLimit   = 20
	maxLimit       = 100
	// minWake keeps a long poll that waits for a lease deadline from spinning.
	minWake = 10 * time.Millisecond
)

func (s *Server) agentHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agent/me", s.handleMe)
	mux.HandleFunc("GET /v1/agent/runs/queued", s.handleQueued)
	mux.HandleFunc("POST /v1/agent/runs/{id}/claim", s.handleClaim)
	mux.HandleFunc("POST /v1/agent/runs/{id}/heartbeat", s.handleHeartbeat)
	mux.HandleFunc("POST /v1/agent/runs/{id}/events", s.handleEvents)
	mux.HandleFunc("POST /v1/agent/runs/{id}/complete", s.handleComplete)
	mux.HandleFunc("/v1/agent/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s.agentGate(mux)
}

// agentGate applies fault injection, token auth and the protocol check.
func (s *Server) agentGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		fault := s.fault
		s.mu.Unlock()
		if fault != nil {
			// Buffer the body so that the fault may read it and the handler still can.
			head, err := io.ReadAll(io.LimitReader(r.Body, trakkar.MaxEventsBytes+1))
			if err != nil {
				writeError(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
				return
			}
			rest := r.Body
			r.Body = io.NopCloser(bytes.NewReader(head))
			status, inject := fault(r)
			if inject {
				writeFault(w, status)
				return
			}
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(head), rest))
		}
		if !s.authorized(r) {
			writeError(w, http.StatusUnauthorized, "invalid_token", "missing or invalid agent token")
			return
		}
		if len(r.Header.Values("Trakkar-Agent-Protocol")) > 0 && r.Header.Get("Trakkar-Agent-Protocol") != trakkar.Protocol {
			writeError(w, http.StatusBadRequest, "bad_request", "unsupported Trakkar-Agent-Protocol; this server speaks "+trakkar.Protocol)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.Token)) == 1
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"agent": s.opts.Agent})
}

func (s *Server) handleQueued(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wait, err := intParam(q.Get("wait"), 0, 0, maxWaitSeconds)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "wait: "+err.Error())
		return
	}
	limit, err := intParam(q.Get("limit"), defaultLimit, 1, 1<<31-1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "limit: "+err.Error())
		return
	}
	limit = min(limit, maxLimit)
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		s.mu.Lock()
		s.expireLocked()
		runs := s.queuedLocked(limit)
		remaining := time.Until(deadline)
		if len(runs) > 0 || s.closed || remaining <= 0 {
			s.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
			return
		}
		wake := s.wake
		if d, ok := s.nextLeaseLocked(); ok && d < remaining {
			remaining = max(d, minWake)
		}
		s.mu.Unlock()

		timer := time.NewTimer(remaining)
		select {
		case <-wake:
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return // the client went away; nobody reads an answer
		}
		timer.Stop()
	}
}

type claimBody struct {
	Runner trakkar.Runner `json:"runner"`
}

func (s *Server) handleClaim(w http.ResponseWriter, r *http.Request) {
	var body claimBody
	if !decodeBody(w, r, &body) {
		return
	}
	if strings.TrimSpace(body.Runner.ID) == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "runner.id is required")
		return
	}
	runID := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	rs, ok := s.runs[runID]
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "no run "+runID)
		return
	case ended(rs.run.Status):
		writeError(w, http.StatusGone, "gone", "run "+runID+" has ended ("+rs.run.Status+")")
		return
	case rs.held && rs.runnerID != body.Runner.ID:
		writeError(w, http.StatusConflict, "already_claimed", "run "+runID+" is claimed by another runner")
		return
	case rs.held:
		// Same runner again: idempotent, and it renews the lease.
		rs.leaseUntil = s.now().Add(s.lease)
	default:
		rs.held = true
		rs.runnerID = body.Runner.ID
		rs.leaseUntil = s.now().Add(s.lease)
		rs.run.Status = trakkar.StatusClaimed
		rs.claims = append(rs.claims, ClaimView{Attempt: rs.run.Attempt, RunnerID: body.Runner.ID,
			Hostname: body.Runner.Hostname, Clone: body.Runner.Clone})
		s.log.Info("run claimed", zap.String("run_id", runID), zap.String("runner_id", body.Runner.ID),
			zap.String("hostname", body.Runner.Hostname), zap.String("clone", body.Runner.Clone), zap.Int("attempt", rs.run.Attempt))
	}
	writeJSON(w, http.StatusOK, trakkar.Claim{
		Run:          copyRun(rs.run),
		Task:         copyTask(rs.task.task),
		LeaseSeconds: s.opts.LeaseSeconds,
	})
}

// ownedLocked finds the run for an owner-only call, or answers the error and
// returns nil: 404 unknown, 410 ended, 409 lease_lost when no longer held (or
// held by another runner, if the caller names itself).
func (s *Server) ownedLocked(w http.ResponseWriter, r *http.Request) *runState {
	runID := r.PathValue("id")
	rs, ok := s.runs[runID]
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "no run "+runID)
	case ended(rs.run.Status):
		writeError(w, http.StatusGone, "gone", "run "+runID+" has ended ("+rs.run.Status+")")
	case !rs.held:
		writeError(w, http.StatusConflict, "lease_lost", "run "+runID+" is no longer held by this runner")
	case r.Header.Get(RunnerIDHeader) != "" && r.Header.Get(RunnerIDHeader) != rs.runnerID:
		writeError(w, http.StatusConflict, "lease_lost", "run "+runID+" is held by another runner")
	default:
		return rs
	}
	return nil
}

type heartbeatBody struct {
	State string `json:"state"`
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	var body heartbeatBody
	if !decodeBody(w, r, &body) {
		return
	}
	switch body.State {
	case trakkar.StatePreparing, trakkar.StateRunning, trakkar.StateVerifying, trakkar.StatePublishing:
	default:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("state %q: want preparing, running, verifying or publishing", body.State))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	rs := s.ownedLocked(w, r)
	if rs == nil {
		return
	}
	rs.leaseUntil = s.now().Add(s.lease)
	rs.heartbeats++
	rs.lastState = body.State
	if rs.run.Status == trakkar.StatusClaimed && body.State != trakkar.StatePreparing {
		rs.run.Status = trakkar.StatusRunning
	}
	writeJSON(w, http.StatusOK, trakkar.HeartbeatReply{
		StopRequested: rs.run.Status == trakkar.StatusStopRequested,
		LeaseSeconds:  s.opts.LeaseSeconds,
	})
}

type eventsBody struct {
	Events []trakkar.Event `json:"events"`
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	var body eventsBody
	if !decodeBody(w, r, &body) {
		return
	}
	if err := validateEvents(body.Events); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	rs := s.ownedLocked(w, r)
	if rs == nil {
		return
	}
	elog := rs.events
	for _, e := range body.Events {
		if _, dup := elog.bySeq[e.Seq]; !dup {
			elog.bySeq[e.Seq] = copyEvent(e)
		}
	}
	for {
		if _, ok := elog.bySeq[elog.acked+1]; !ok {
			break
		}
		elog.acked++
	}
	writeJSON(w, http.StatusOK, map[string]int64{"acked_seq": elog.acked})
}

func validateEvents(events []trakkar.Event) error {
	if len(events) > trakkar.MaxEventsPerRequest {
		return fmt.Errorf("%d events in one request; at most %d", len(events), trakkar.MaxEventsPerRequest)
	}
	for i, e := range events {
		if e.Seq < 1 {
			return fmt.Errorf("events[%d]: seq %d; seq starts at 1", i, e.Seq)
		}
		switch e.Type {
		case trakkar.EventStatus, trakkar.EventMessage, trakkar.EventTool, trakkar.EventLog, trakkar.EventError:
		default:
			return fmt.Errorf("events[%d]: type %q: want status, message, tool, log or error", i, e.Type)
		}
		if n := utf8.RuneCountInString(e.Text); n > trakkar.MaxEventText {
			return fmt.Errorf("events[%d]: text of %d characters; at most %d", i, n, trakkar.MaxEventText)
		}
	}
	return nil
}

func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request) {
	var c trakkar.Completion
	if !decodeBody(w, r, &c) {
		return
	}
	status, err := completionStatus(c)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if rs, ok := s.runs[r.PathValue("id")]; ok && rs.completion != nil {
		// A repeat of the same completion is idempotent; a different one cannot
		// change a finished run, so it is answered like any finalised run: 410.
		if sameCompletion(*rs.completion, c) {
			writeJSON(w, http.StatusOK, map[string]any{"run": copyRun(rs.run)})
		} else {
			writeError(w, http.StatusGone, "gone", "run "+rs.run.ID+" was already completed with a different result")
		}
		return
	}
	rs := s.ownedLocked(w, r)
	if rs == nil {
		return
	}
	rs.held = false
	rs.run.Status = status
	rs.completion = copyCompletion(&c)
	ts := rs.task
	if c.PullRequest != nil {
		ts.task.PullRequest = copyPtr(c.PullRequest)
	}
	if strings.TrimSpace(c.Summary) != "" {
		// Trakkar shows the agent's final message in the task chat, which is what
		// a later follow-up gets as history.
		ts.task.Messages = append(ts.task.Messages, trakkar.Message{
			ID:        newID("msg_"),
			Author:    trakkar.Author{Name: s.opts.Agent.Name, Kind: "agent"},
			Body:      c.Summary,
			CreatedAt: s.now().UTC(),
		})
	}
	s.log.Info("run completed", zap.String("run_id", rs.run.ID), zap.String("task_id", ts.task.ID),
		zap.String("runner_id", rs.runnerID), zap.String("outcome", c.Outcome))
	writeJSON(w, http.StatusOK, map[string]any{"run": copyRun(rs.run)})
}

func completionStatus(c trakkar.Completion) (string, error) {
	if c.PullRequest != nil && strings.TrimSpace(c.PullRequest.URL) == "" {
		return "", errors.New("pull_request.url is required when pull_request is set")
	}
	switch c.Outcome {
	case trakkar.OutcomeSucceeded, trakkar.OutcomeNoChanges:
		return trakkar.StatusSucceeded, nil
	case trakkar.OutcomeFailed:
		return trakkar.StatusFailed, nil
	case trakkar.OutcomeStopped:
		return trakkar.StatusStopped, nil
	}
	return "", fmt.Errorf("outcome %q: want succeeded, no_changes, failed or stopped", c.Outcome)
}

// sameCompletion compares the decoded bodies, so whitespace, field order and
// unknown fields do not matter.
func sameCompletion(a, b trakkar.Completion) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func intParam(raw string, def, lo, hi int) (int, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", raw)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range %d..%d", n, lo, hi)
	}
	return n, nil
}

// decodeBody reads a JSON body of at most 1 MiB into v, or answers 400 and
// returns false. Unknown fields are ignored (forward compatible).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, trakkar.MaxEventsBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
		return false
	}
	if len(b) > trakkar.MaxEventsBytes {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("body larger than %d bytes", trakkar.MaxEventsBytes))
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var body trakkar.ErrorBody
	body.Error.Code = code
	body.Error.Message = message
	writeJSON(w, status, body)
}

// writeFault answers an injected failure with the code the contract uses for it.
func writeFault(w http.ResponseWriter, status int) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	code := map[int]string{
		http.StatusBadRequest:      "bad_request",
		http.StatusUnauthorized:    "invalid_token",
		http.StatusForbidden:       "forbidden",
		http.StatusNotFound:        "not_found",
		http.StatusConflict:        "conflict",
		http.StatusGone:            "gone",
		http.StatusTooManyRequests: "rate_limited",
	}[status]
	if code == "" {
		code = "unavailable"
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, status, code, "injected fault")
}

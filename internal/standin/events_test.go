package standin

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

func TestEventsDedupeAndAck(t *testing.T) {
	e := newEnv(t)
	_, run := e.claimed(t, "E-1")
	steps := []struct {
		name   string
		events []trakkar.Event
		want   int64
	}{
		{"gap stops the ack", []trakkar.Event{ev(1, "one"), ev(2, "two"), ev(4, "four")}, 2},
		{"filling the gap", []trakkar.Event{ev(3, "three")}, 4},
		{"resend never duplicates or overwrites", []trakkar.Event{ev(1, "ONE"), ev(2, "TWO"), ev(3, "THREE"), ev(4, "FOUR")}, 4},
		{"empty batch", []trakkar.Event{}, 4},
		{"out of order batch", []trakkar.Event{ev(6, "six"), ev(5, "five")}, 6},
	}
	for _, st := range steps {
		if got := acked(t)(e.events(t, run.ID, st.events...)); got != st.want {
			t.Fatalf("%s: acked %d, want %d", st.name, got, st.want)
		}
	}
	v := e.runView(t, run.ID)
	if got := seqs(v.Events); got != "[1 2 3 4 5 6]" {
		t.Fatalf("stored seqs %s", got)
	}
	for i, want := range []string{"one", "two", "three", "four", "five", "six"} {
		if v.Events[i].Text != want {
			t.Fatalf("event %d text %q, want %q (first write wins)", i+1, v.Events[i].Text, want)
		}
	}
}

func TestEventLimits(t *testing.T) {
	e := newEnv(t)
	_, run := e.claimed(t, "EL-1")
	many := func(n int) []trakkar.Event {
		out := make([]trakkar.Event, n)
		for i := range out {
			out[i] = ev(int64(i+1), "x")
		}
		return out
	}
	withType := ev(1, "x")
	withType.Type = "chatter"
	huge := ev(1, "x")
	huge.Data = map[string]any{"blob": strings.Repeat("a", trakkar.MaxEventsBytes)}
	valid2 := ev(2, "fine")
	tests := []struct {
		name   string
		body   any
		status int
	}{
		{"501 events", map[string]any{"events": many(501)}, 400},
		{"body over 1 MiB", map[string]any{"events": []trakkar.Event{huge}}, 400},
		{"text of 4001 chars", map[string]any{"events": []trakkar.Event{ev(1, strings.Repeat("a", 4001))}}, 400},
		{"unknown type", map[string]any{"events": []trakkar.Event{withType}}, 400},
		{"seq 0", map[string]any{"events": []trakkar.Event{ev(0, "x")}}, 400},
		{"bad event after a good one stores nothing", map[string]any{"events": []trakkar.Event{ev(1, "ok"), valid2, ev(3, strings.Repeat("b", 4001))}}, 400},
		{"malformed JSON", `{"events": [`, 400},
		{"4000 two-byte chars", map[string]any{"events": []trakkar.Event{ev(1, strings.Repeat("é", 4000))}}, 200},
		{"exactly 500 events", map[string]any{"events": many(500)}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.runView(t, run.ID).Events)
			status, raw := e.do(t, "POST", "/v1/agent/runs/"+run.ID+"/events", tc.body)
			if tc.status == 200 {
				wantOK(t, status, raw)
				return
			}
			wantError(t, status, raw, tc.status, "bad_request")
			if after := len(e.runView(t, run.ID).Events); after != before {
				t.Fatalf("a rejected batch stored events: %d → %d", before, after)
			}
		})
	}
	if got := acked(t)(e.events(t, run.ID)); got != 500 {
		t.Fatalf("acked %d after the accepted batches, want 500", got)
	}
}

func TestEventsAfterCompletionAreGone(t *testing.T) {
	e := newEnv(t)
	_, run := e.claimed(t, "EG-1")
	mustOK(t)(e.complete(t, run.ID, map[string]string{"outcome": "failed", "error": "boom"}))
	status, raw := e.events(t, run.ID, ev(1, "late"))
	wantError(t, status, raw, 410, "gone")
	status, raw = e.events(t, "run_nope", ev(1, "x"))
	wantError(t, status, raw, 404, "not_found")
}

func TestStop(t *testing.T) {
	e := newEnv(t)
	task, run := e.claimed(t, "S-1")
	reply := decode[trakkar.HeartbeatReply](t, okBody(t)(e.heartbeat(t, run.ID, "running")))
	if reply.StopRequested {
		t.Fatal("stop_requested before Stop")
	}
	if err := e.s.Stop(task.ID); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := e.s.Stop(task.ID); err != nil {
		t.Fatalf("second stop must be a no-op: %v", err)
	}
	if v := e.runView(t, run.ID); v.Run.Status != trakkar.StatusStopRequested {
		t.Fatalf("status %s", v.Run.Status)
	}
	for range 2 {
		reply = decode[trakkar.HeartbeatReply](t, okBody(t)(e.heartbeat(t, run.ID, "running")))
		if !reply.StopRequested {
			t.Fatal("heartbeat after Stop did not say stop_requested")
		}
	}
	if v := e.runView(t, run.ID); v.Run.Status != trakkar.StatusStopRequested {
		t.Fatalf("a heartbeat must not undo the stop: %s", v.Run.Status)
	}
	mustOK(t)(e.complete(t, run.ID, map[string]string{"outcome": "stopped"}))
	if v := e.runView(t, run.ID); v.Run.Status != trakkar.StatusStopped {
		t.Fatalf("status %s after complete stopped", v.Run.Status)
	}
	if err := e.s.Stop(task.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("stop without an active run: %v, want ErrConflict", err)
	}
	if err := e.s.Stop("tsk_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stop of an unknown task: %v, want ErrNotFound", err)
	}
}

func TestComplete(t *testing.T) {
	outcomes := []struct {
		outcome, status string
	}{
		{"succeeded", trakkar.StatusSucceeded},
		{"no_changes", trakkar.StatusSucceeded},
		{"failed", trakkar.StatusFailed},
		{"stopped", trakkar.StatusStopped},
	}
	for _, tc := range outcomes {
		t.Run(tc.outcome, func(t *testing.T) {
			e := newEnv(t)
			_, run := e.claimed(t, "CO-1")
			body := okBody(t)(e.complete(t, run.ID, map[string]string{"outcome": tc.outcome}))
			if got := decode[struct{ Run trakkar.Run }](t, body).Run; got.ID != run.ID || got.Status != tc.status {
				t.Fatalf("run %+v, want status %s", got, tc.status)
			}
		})
	}

	e := newEnv(t)
	task, run := e.claimed(t, "CO-2")
	for _, bad := range []string{`{"outcome":"done"}`, `{}`, `{"outcome":"succeeded","pull_request":{"number":3}}`, `{"outcome":`} {
		status, raw := e.complete(t, run.ID, bad)
		wantError(t, status, raw, 400, "bad_request")
	}
	first := `{"outcome":"succeeded","summary":"Fixed the login.","pull_request":{"url":"https://github.test/o/r/pull/7","number":7,"branch":"trakkar/co-2-fix"},"agent_session_id":"sess-1","usage":{"turns":3,"cost_usd":0.5}}`
	mustOK(t)(e.complete(t, run.ID, first))
	// Same completion, other formatting and an unknown field: idempotent.
	again := "{\n \"usage\": {\"cost_usd\": 0.5, \"turns\": 3}, \"agent_session_id\": \"sess-1\", \"future\": true,\n" +
		`"pull_request":{"branch":"trakkar/co-2-fix","number":7,"url":"https://github.test/o/r/pull/7"},"summary":"Fixed the login.","outcome":"succeeded"}`
	mustOK(t)(e.complete(t, run.ID, again))
	status, raw := e.complete(t, run.ID, `{"outcome":"failed","error":"changed my mind"}`)
	wantError(t, status, raw, 410, "gone")

	v, _ := e.s.Task(task.ID)
	pr := v.Task.PullRequest
	if pr == nil || pr.URL != "https://github.test/o/r/pull/7" || pr.Number != 7 || pr.Branch != "trakkar/co-2-fix" {
		t.Fatalf("task PR %+v", pr)
	}
	c := v.Runs[0].Completion
	if c == nil || c.Outcome != "succeeded" || c.AgentSessionID == nil || *c.AgentSessionID != "sess-1" || c.Usage.Turns != 3 {
		t.Fatalf("completion %+v", c)
	}
	if v.Runs[0].Run.Status != trakkar.StatusSucceeded {
		t.Fatalf("status %s after the rejected second completion", v.Runs[0].Run.Status)
	}
	msgs := v.Task.Messages
	if len(msgs) != 1 || msgs[0].Author.Kind != "agent" || msgs[0].Body != "Fixed the login." {
		t.Fatalf("the summary should be the agent's chat reply: %+v", msgs)
	}

	_, queued := e.createTask(t, "CO-3")
	status, raw = e.complete(t, queued.ID, `{"outcome":"succeeded"}`)
	wantError(t, status, raw, 409, "lease_lost")
	status, raw = e.complete(t, "run_nope", `{"outcome":"succeeded"}`)
	wantError(t, status, raw, 404, "not_found")
}

func TestFollowUp(t *testing.T) {
	e := newEnv(t)
	task, run := e.claimed(t, "F-1")
	if _, err := e.s.PostMessage(task.ID, "also fix the footer"); !errors.Is(err, ErrConflict) {
		t.Fatalf("message during an active run: %v, want ErrConflict", err)
	}
	pr := trakkar.PullRequest{URL: "https://github.test/o/r/pull/9", Number: 9, Branch: "trakkar/f-1"}
	mustOK(t)(e.complete(t, run.ID, map[string]any{"outcome": "succeeded", "pull_request": pr}))

	for _, blank := range []string{"", "  \n"} {
		if _, err := e.s.PostMessage(task.ID, blank); !errors.Is(err, ErrInvalid) {
			t.Fatalf("blank message: %v, want ErrInvalid", err)
		}
	}
	if _, err := e.s.PostMessage("tsk_nope", "hi"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown task: %v, want ErrNotFound", err)
	}
	follow, err := e.s.PostMessage(task.ID, "also fix the footer")
	if err != nil {
		t.Fatalf("post message: %v", err)
	}
	if follow.Kind != trakkar.KindFollowUp || follow.Status != trakkar.StatusQueued || follow.MessageID == nil || follow.TaskID != task.ID || follow.ID == run.ID {
		t.Fatalf("follow-up run %+v", follow)
	}
	if _, err := e.s.PostMessage(task.ID, "and the header"); !errors.Is(err, ErrConflict) {
		t.Fatalf("message while a follow-up is queued: %v, want ErrConflict", err)
	}

	status, raw := e.claim(t, follow.ID, "r9")
	wantOK(t, status, raw)
	c := decode[trakkar.Claim](t, raw)
	if c.Run.Kind != trakkar.KindFollowUp || c.Run.MessageID == nil || *c.Run.MessageID != *follow.MessageID {
		t.Fatalf("claimed run %+v", c.Run)
	}
	last := c.Task.Messages[len(c.Task.Messages)-1]
	if last.ID != *follow.MessageID || last.Body != "also fix the footer" || last.Author.Kind != "user" {
		t.Fatalf("last message %+v", last)
	}
	if c.Task.PullRequest == nil || *c.Task.PullRequest != pr {
		t.Fatalf("task PR %+v, want %+v", c.Task.PullRequest, pr)
	}
}

func TestSetTaskPR(t *testing.T) {
	e := newEnv(t)
	task, run := e.createTask(t, "PR-1")
	pr := &trakkar.PullRequest{URL: "https://github.test/o/r/pull/1", Number: 1, Branch: "b"}
	e.s.SetTaskPR(task.ID, pr)
	pr.Number = 99 // the server keeps its own copy
	e.s.SetTaskPR("tsk_nope", pr)
	c := decode[trakkar.Claim](t, okBody(t)(e.claim(t, run.ID, "r1")))
	if c.Task.PullRequest == nil || c.Task.PullRequest.Number != 1 {
		t.Fatalf("claimed task PR %+v", c.Task.PullRequest)
	}
}

func TestFaultInjection(t *testing.T) {
	e := newEnv(t)
	_, run := e.claimed(t, "FI-1")
	var mu sync.Mutex
	var seen []string
	e.s.SetFault(func(r *http.Request) (int, bool) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+string(body))
		mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/heartbeat"):
			return http.StatusServiceUnavailable, true
		case strings.HasSuffix(r.URL.Path, "/me"):
			return http.StatusTooManyRequests, true
		}
		return 0, false
	})
	status, raw := e.heartbeat(t, run.ID, "running")
	wantError(t, status, raw, 503, "unavailable")
	if v := e.runView(t, run.ID); v.Heartbeats != 0 {
		t.Fatal("an injected fault must not reach the handler")
	}
	status, hdr, raw := e.request(t, "GET", "/v1/agent/me", nil, map[string]string{"Authorization": "Bearer wrong"})
	wantError(t, status, raw, 429, "rate_limited")
	if hdr.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	// Not injected: the handler still gets the body the fault read.
	if got := acked(t)(e.events(t, run.ID, ev(1, "through"))); got != 1 {
		t.Fatalf("acked %d", got)
	}
	mu.Lock()
	if len(seen) != 3 || !strings.Contains(seen[2], `"through"`) {
		t.Fatalf("fault saw %q", seen)
	}
	mu.Unlock()
	e.s.SetFault(nil)
	mustOK(t)(e.heartbeat(t, run.ID, "running"))
	// The person API is never faulted.
	e.s.SetFault(func(*http.Request) (int, bool) { return 500, true })
	status, raw = e.do(t, "GET", "/api/tasks", nil)
	wantOK(t, status, raw)
}

func TestCreateTask(t *testing.T) {
	e := newEnv(t)
	base := "develop"
	task, run, err := e.s.CreateTask(NewTask{Key: "WEB-142", Title: "Fix login", Description: "d", BaseBranch: &base, Labels: []string{"bug"}, Priority: "high"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	base = "changed"
	if !strings.HasPrefix(task.ID, "tsk_") || !strings.HasPrefix(run.ID, "run_") || task.URL != "http://trakkar.test/tasks/WEB-142" ||
		task.BaseBranch == nil || run.TaskID != task.ID || run.Kind != trakkar.KindStart || run.Attempt != 1 || run.MessageID != nil {
		t.Fatalf("task %+v run %+v", task, run)
	}
	if v, _ := e.s.TaskByKey("WEB-142"); *v.Task.BaseBranch != "develop" || v.Task.Labels[0] != "bug" || v.Task.Priority != "high" {
		t.Fatalf("stored task %+v", v.Task)
	}
	tests := []struct {
		key  string
		want error
	}{
		{"", ErrInvalid},
		{"   ", ErrInvalid},
		{"A B", ErrInvalid},
		{"a/b", ErrInvalid},
		{"<x>", ErrInvalid},
		{strings.Repeat("K", 65), ErrInvalid},
		{"WEB-142", ErrConflict},
		{" WEB-142 ", ErrConflict},
	}
	for _, tc := range tests {
		if _, _, err := e.s.CreateTask(NewTask{Key: tc.key, Title: "t"}); !errors.Is(err, tc.want) {
			t.Errorf("key %q: %v, want %v", tc.key, err, tc.want)
		}
	}
	if n := len(e.s.Tasks()); n != 1 {
		t.Fatalf("%d tasks after rejected creates", n)
	}
	if _, ok := e.s.Task("tsk_nope"); ok {
		t.Fatal("unknown task found")
	}
	if _, ok := e.s.Run("run_nope"); ok {
		t.Fatal("unknown run found")
	}
}

func TestSnapshotsAreCopies(t *testing.T) {
	e := newEnv(t)
	task, run := e.claimed(t, "CP-1")
	withData := ev(1, "tool")
	withData.Type = trakkar.EventTool
	withData.Data = map[string]any{"name": "Edit", "args": []any{"a"}}
	mustOK(t)(e.events(t, run.ID, withData))
	v, _ := e.s.Task(task.ID)
	v.Task.Labels = append(v.Task.Labels, "mutated")
	v.Runs[0].Events[0].Data["name"] = "mutated"
	v.Runs[0].Events[0].Data["args"].([]any)[0] = "mutated"
	v.Runs[0].Run.Status = "mutated"
	again, _ := e.s.Task(task.ID)
	if len(again.Task.Labels) != 0 || again.Runs[0].Events[0].Data["name"] != "Edit" ||
		again.Runs[0].Events[0].Data["args"].([]any)[0] != "a" || again.Runs[0].Run.Status != trakkar.StatusClaimed {
		t.Fatalf("snapshot shared state with the server: %+v", again)
	}
}

// TestConcurrentUse is for the race detector: agents and people at once.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	_, run := e.claimed(t, "CC-1")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 10 {
				e.events(t, run.ID, ev(int64(w*10+i+1), "x"))
				e.heartbeat(t, run.ID, "running")
			}
		}()
		go func() {
			defer wg.Done()
			for range 10 {
				for _, v := range e.s.Tasks() {
					_ = len(v.Runs[0].Events)
				}
				e.do(t, "GET", "/api/tasks", nil)
				e.s.ExpireLeases()
			}
		}()
	}
	wg.Wait()
	if got := acked(t)(e.events(t, run.ID)); got != 40 {
		t.Fatalf("acked %d, want 40", got)
	}
}

// okBody asserts 200 and returns the body: okBody(t)(e.heartbeat(…)).
func okBody(t *testing.T) func(int, []byte) []byte {
	t.Helper()
	return func(status int, raw []byte) []byte {
		t.Helper()
		wantOK(t, status, raw)
		return raw
	}
}

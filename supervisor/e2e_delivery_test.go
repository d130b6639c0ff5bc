package supervisor_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// statusRecorder keeps the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// observe wraps the stand-in and calls seen with each request's path, its
// body and the status answered.
func (e *env) observe(before func(r *http.Request, body []byte) (status int, refuse bool), seen func(path string, status int)) {
	e.wrapHandler(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if before != nil {
				if status, refuse := before(r, body); refuse {
					http.Error(w, `{"error":{"code":"unavailable","message":"injected"}}`, status)
					if seen != nil {
						seen(r.URL.Path, status)
					}
					return
				}
			}
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			if seen != nil {
				seen(r.URL.Path, rec.status)
			}
		})
	})
}

// The agent finishes during a Trakkar outage that lasts longer than the 30 s
// the runner used to wait for its events: heartbeats go on, every event
// arrives exactly once and in order, and the completion goes out only after
// the last of them is acknowledged (the stand-in refuses events after it).
func TestOutageOverTheAgentsEndDelaysTheCompletion(t *testing.T) {
	parallelLong(t)
	// Heartbeats every lease/3 = 30 s: at least one falls in the 33 s wait.
	// The outage lasts from the second note to 33 s after the agent's end; the
	// last heartbeat before it may be 30 s older. A 60 s lease expired in CI,
	// where the agent's end came 11 s after the second note.
	e := newEnv(t, envOpts{lease: 90, clientBackoff: 300 * time.Millisecond})
	const notes = 20
	createTask(t, e, "DEL-1", "Talk, then finish during an outage\nfake:scenario=chatty\nfake:count="+strconv.Itoa(notes)+"\nfake:delay=200ms\n")

	var down, ended atomic.Bool
	var refused, heartbeatsAfterEnd, eventsRefusedAfterCompletion atomic.Int64
	var completed atomic.Bool
	e.observe(func(r *http.Request, _ []byte) (int, bool) {
		if !down.Load() {
			return 0, false
		}
		refused.Add(1)
		if ended.Load() && strings.HasSuffix(r.URL.Path, "/heartbeat") {
			heartbeatsAfterEnd.Add(1)
		}
		return http.StatusServiceUnavailable, true
	}, func(path string, status int) {
		switch {
		case strings.HasSuffix(path, "/complete") && status == http.StatusOK:
			completed.Store(true)
		case strings.HasSuffix(path, "/events") && status == http.StatusGone:
			eventsRefusedAfterCompletion.Add(1)
		}
	})
	e.start(e.config(func(c *supervisor.Config) { c.EventRetryMax = 500 * time.Millisecond }))

	waitFor(t, 60*time.Second, "first progress notes", func() bool {
		rv, _ := e.lastRun("DEL-1")
		return strings.Contains(eventTexts(rv.Events), "Progress note 2 of")
	})
	down.Store(true)
	// The agent has ended once its container exited; the container itself is
	// kept until Trakkar has acknowledged its output.
	waitFor(t, 60*time.Second, "the agent's container exited", func() bool {
		for _, c := range e.managedContainers() {
			if c.State == "running" || c.State == "created" {
				return false
			}
		}
		return true
	})
	ended.Store(true)
	time.Sleep(33 * time.Second) // past the old 30 s give-up
	if completed.Load() {
		t.Fatal("completed while Trakkar was down")
	}
	down.Store(false)

	rv := e.waitCompleted("DEL-1", 60*time.Second)
	if refused.Load() == 0 {
		t.Fatal("the outage refused nothing; the test did not exercise it")
	}
	if heartbeatsAfterEnd.Load() == 0 {
		t.Error("no heartbeat was attempted while the events waited")
	}
	if n := eventsRefusedAfterCompletion.Load(); n > 0 {
		t.Errorf("%d event requests were refused as gone: events were sent after completion", n)
	}
	assertSeqContiguous(t, rv.Events)
	assertNoDuplicateContent(t, rv.Events)
	all := eventTexts(rv.Events)
	for i := 1; i <= notes; i++ {
		if !strings.Contains(all, "Progress note "+strconv.Itoa(i)+" of "+strconv.Itoa(notes)) {
			t.Fatalf("progress note %d lost in the outage:\n%s", i, all)
		}
	}
	if rv.Completion.Outcome != trakkar.OutcomeNoChanges {
		t.Fatalf("outcome %q, want no_changes", rv.Completion.Outcome)
	}
}

// isEmptyBatch reports a POST of {"events": []}: the acked_seq read.
func isEmptyBatch(r *http.Request, body []byte) bool {
	if !strings.HasSuffix(r.URL.Path, "/events") {
		return false
	}
	var b struct{ Events []json.RawMessage }
	return json.Unmarshal(body, &b) == nil && len(b.Events) == 0
}

// A restarted runner whose acked_seq read fails goes on numbering where the
// previous process stopped: the restart notice and the agent's later output
// all arrive, none twice, with no seq reused.
func TestRestartWhenAckedSeqCannotBeRead(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{lease: 60, clientBackoff: 200 * time.Millisecond, clientMaxElapsed: 2 * time.Second})
	const notes = 30
	createTask(t, e, "DEL-2", "Talk across a restart\nfake:scenario=chatty\nfake:count="+strconv.Itoa(notes)+"\nfake:delay=300ms\n")
	cfg := e.config(func(c *supervisor.Config) { c.EventRetryMax = 500 * time.Millisecond })

	var readsFailUntil atomic.Int64
	var readsRefused atomic.Int64
	e.observe(func(r *http.Request, body []byte) (int, bool) {
		if isEmptyBatch(r, body) && time.Now().UnixNano() < readsFailUntil.Load() {
			readsRefused.Add(1)
			return http.StatusInternalServerError, true
		}
		return 0, false
	}, nil)

	first := e.start(cfg)
	waitFor(t, 60*time.Second, "progress note 5", func() bool {
		rv, _ := e.lastRun("DEL-2")
		return strings.Contains(eventTexts(rv.Events), "Progress note 5 of")
	})
	first.stop() // abort: the container runs on for the next process
	if err := first.wait(t, 30*time.Second); err != nil {
		t.Logf("first supervisor: %v", err)
	}
	if len(e.managedContainers()) == 0 {
		t.Fatal("the agent's container did not outlive the supervisor")
	}
	readsFailUntil.Store(time.Now().Add(8 * time.Second).UnixNano())
	e.start(cfg)

	rv := e.waitCompleted("DEL-2", 120*time.Second)
	if readsRefused.Load() == 0 {
		t.Fatal("no acked_seq read was refused; the test did not exercise it")
	}
	assertSeqContiguous(t, rv.Events)
	assertNoDuplicateContent(t, rv.Events)
	all := eventTexts(rv.Events)
	if !strings.Contains(all, "Runner restarted") {
		t.Errorf("the restart notice was lost:\n%s", all)
	}
	for i := 1; i <= notes; i++ {
		if !strings.Contains(all, "Progress note "+strconv.Itoa(i)+" of "+strconv.Itoa(notes)) {
			t.Fatalf("progress note %d lost across the restart:\n%s", i, all)
		}
	}
	if n := len(attempts(rv.Events)); n != 1 {
		t.Errorf("seq started at 1 %d times: the restart renumbered", n)
	}
	if rv.Completion.Outcome != trakkar.OutcomeNoChanges {
		t.Fatalf("outcome %q, want no_changes", rv.Completion.Outcome)
	}
}

// A restart during a fix round keeps the round count: the verify budget is
// not granted afresh.
func TestRestartKeepsTheFixRoundCount(t *testing.T) {
	parallel(t)
	// The failing output scripts the fix round (the fake agent reads
	// directives from its prompt, which quotes it): a few seconds of chat.
	const cmd = `echo "fake:scenario=chatty"; echo "fake:count=12"; echo "fake:delay=400ms"; echo "FAIL: still broken"; exit 1`
	e := newVerifyEnv(t, cmd)
	createTask(t, e, "DEL-3", "Try\nfake:write=app.txt=attempt\n")
	cfg := e.verifyConfig(func(c *supervisor.Config) { c.VerifyRetries = 1 })

	first := e.start(cfg)
	waitFor(t, 120*time.Second, "the fix round talking", func() bool {
		rv, _ := e.lastRun("DEL-3")
		return strings.Contains(eventTexts(rv.Events), "Progress note 2 of 12")
	})
	first.stop()
	if err := first.wait(t, 30*time.Second); err != nil {
		t.Logf("first supervisor: %v", err)
	}
	e.start(cfg)

	rv := e.waitCompleted("DEL-3", 180*time.Second)
	texts := eventTexts(rv.Events)
	if n := countEvents(rv.Events, trakkar.EventStatus, "Resuming the agent to fix the failure"); n != 1 {
		t.Errorf("%d fix rounds, want 1 (--verify-retries 1):\n%s", n, texts)
	}
	if n := countEvents(rv.Events, trakkar.EventStatus, "Verifying: "); n != 2 {
		t.Errorf("%d verify rounds, want 2:\n%s", n, texts)
	}
	c := rv.Completion
	if c.Outcome != trakkar.OutcomeFailed || !strings.Contains(deref(c.Error), "(after 1 fix round)") {
		t.Fatalf("outcome %q error %q\n%s", c.Outcome, deref(c.Error), texts)
	}
}

package standin

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

func TestAuthAndProtocol(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		hdr      map[string]string
		wantCode int
		wantErr  string
	}{
		{"valid", nil, 200, ""},
		{"lowercase scheme", map[string]string{"Authorization": "bearer " + testToken}, 200, ""},
		{"no authorization", map[string]string{"Authorization": ""}, 401, "invalid_token"},
		{"wrong token", map[string]string{"Authorization": "Bearer trk_agent_nope"}, 401, "invalid_token"},
		{"token prefix only", map[string]string{"Authorization": "Bearer trk_agent_tes"}, 401, "invalid_token"},
		{"basic scheme", map[string]string{"Authorization": "Basic " + testToken}, 401, "invalid_token"},
		{"no protocol header", map[string]string{"Trakkar-Agent-Protocol": ""}, 200, ""},
		{"protocol 2", map[string]string{"Trakkar-Agent-Protocol": "2"}, 400, "bad_request"},
		{"wrong token wins over protocol", map[string]string{"Authorization": "Bearer x", "Trakkar-Agent-Protocol": "2"}, 401, "invalid_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, raw := e.request(t, "GET", "/v1/agent/me", nil, tc.hdr)
			if tc.wantErr == "" {
				wantOK(t, status, raw)
				return
			}
			wantError(t, status, raw, tc.wantCode, tc.wantErr)
		})
	}
	// Every agent endpoint is behind the token, not only /me.
	status, _, raw := e.request(t, "POST", "/v1/agent/runs/run_x/claim", `{"runner":{"id":"r"}}`, map[string]string{"Authorization": ""})
	wantError(t, status, raw, 401, "invalid_token")
	status, raw = e.do(t, "GET", "/v1/agent/nope", nil)
	wantError(t, status, raw, 404, "not_found")
}

func TestMe(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		e := newEnv(t)
		status, raw := e.do(t, "GET", "/v1/agent/me", nil)
		wantOK(t, status, raw)
		got := decode[struct{ Agent trakkar.Agent }](t, raw).Agent
		if got.ID != "agt_dev" || got.Name != "Local agent" || got.Provider != "claude_code" || got.BranchPrefix != "trakkar/" {
			t.Fatalf("agent %+v", got)
		}
		if got.MaxConcurrency != nil || got.VerifyCommand != nil {
			t.Fatalf("unset settings must be null: %+v", got)
		}
	})
	t.Run("configured", func(t *testing.T) {
		verify, limit := "make test", 2
		s := New(Options{Agent: trakkar.Agent{ID: "agt_x", Name: "X", Provider: "cursor", VerifyCommand: &verify, MaxConcurrency: &limit}})
		e := &env{s: s}
		ts := newServer(t, s)
		e.ts = ts
		status, _, raw := e.request(t, "GET", "/v1/agent/me", nil, map[string]string{"Authorization": "Bearer " + DefaultToken})
		wantOK(t, status, raw)
		got := decode[struct{ Agent trakkar.Agent }](t, raw).Agent
		if got.ID != "agt_x" || got.Provider != "cursor" || got.VerifyCommand == nil || *got.VerifyCommand != verify ||
			got.MaxConcurrency == nil || *got.MaxConcurrency != 2 || got.BranchPrefix != "trakkar/" {
			t.Fatalf("agent %+v", got)
		}
	})
}

func TestQueuedParams(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"wait=-1", "wait=31", "wait=abc", "wait=1.5", "limit=0", "limit=-3", "limit=x"} {
		t.Run(q, func(t *testing.T) {
			status, raw := e.do(t, "GET", "/v1/agent/runs/queued?"+q, nil)
			wantError(t, status, raw, 400, "bad_request")
		})
	}
	var ids []string
	for _, key := range []string{"A-1", "A-2", "A-3"} {
		_, run := e.createTask(t, key)
		ids = append(ids, run.ID)
	}
	status, raw := e.do(t, "GET", "/v1/agent/runs/queued?limit=2", nil)
	wantOK(t, status, raw)
	runs := decode[struct{ Runs []trakkar.Run }](t, raw).Runs
	if len(runs) != 2 || runs[0].ID != ids[0] || runs[1].ID != ids[1] {
		t.Fatalf("runs %+v, want the two oldest %v", runs, ids[:2])
	}
	// Claimed runs are no longer listed.
	mustOK(t)(e.claim(t, ids[0], "r1"))
	status, raw = e.do(t, "GET", "/v1/agent/runs/queued?wait=0", nil)
	wantOK(t, status, raw)
	runs = decode[struct{ Runs []trakkar.Run }](t, raw).Runs
	if len(runs) != 2 || runs[0].ID != ids[1] || runs[1].ID != ids[2] || runs[0].Status != trakkar.StatusQueued || runs[0].Kind != trakkar.KindStart {
		t.Fatalf("runs %+v, want %v queued", runs, ids[1:])
	}
}

type pollResult struct {
	status int
	runs   []trakkar.Run
	at     time.Time
}

func (e *env) poll(t *testing.T, wait int) <-chan pollResult {
	out := make(chan pollResult, 1)
	go func() {
		res, err := http.DefaultClient.Do(mustRequest(t, "GET", e.ts.URL+"/v1/agent/runs/queued?wait="+strconv.Itoa(wait)))
		if err != nil {
			t.Errorf("poll: %v", err)
			out <- pollResult{}
			return
		}
		defer res.Body.Close()
		var body struct{ Runs []trakkar.Run }
		if err := decodeReader(res, &body); err != nil {
			t.Errorf("poll body: %v", err)
		}
		out <- pollResult{status: res.StatusCode, runs: body.Runs, at: time.Now()}
	}()
	return out
}

func TestLongPollWakesOnCreateTask(t *testing.T) {
	e := newEnv(t)
	started := time.Now()
	results := e.poll(t, 30)
	time.Sleep(150 * time.Millisecond) // let the poll start waiting
	select {
	case r := <-results:
		t.Fatalf("poll answered before anything was queued: %+v", r)
	default:
	}
	_, run := e.createTask(t, "W-1")
	created := time.Now()
	select {
	case r := <-results:
		if r.status != 200 || len(r.runs) != 1 || r.runs[0].ID != run.ID {
			t.Fatalf("poll got %+v, want run %s", r, run.ID)
		}
		// Far below the poll's 30 s wait, which an unwoken poll would take.
		if d := r.at.Sub(created); d > 10*time.Second {
			t.Fatalf("poll answered %v after the task was created", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("poll did not wake within 20s (started %v ago)", time.Since(started))
	}
}

func TestLongPollTimesOutEmpty(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	r := <-e.poll(t, 1)
	d := time.Since(start)
	if r.status != 200 || r.runs == nil || len(r.runs) != 0 {
		t.Fatalf("poll got %+v, want 200 with an empty runs list", r)
	}
	// The upper bound only ends a poll that never answers; slack for a loaded host.
	if d < 900*time.Millisecond || d > 15*time.Second {
		t.Fatalf("wait=1 answered after %v", d)
	}
}

func TestLongPollReleasedByClose(t *testing.T) {
	e := newEnv(t)
	results := e.poll(t, 30)
	time.Sleep(100 * time.Millisecond)
	e.s.Close()
	select {
	case r := <-results:
		if r.status != 200 || len(r.runs) != 0 {
			t.Fatalf("poll got %+v", r)
		}
	case <-time.After(15 * time.Second): // of the poll's 30 s
		t.Fatal("Close did not release the long poll")
	}
}

func TestLongPollClientGoesAway(t *testing.T) {
	s := New(Options{Token: testToken})
	returned := make(chan time.Time, 1)
	h := s.Handler()
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		returned <- time.Now()
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req := mustRequest(t, "GET", ts.URL+"/v1/agent/runs/queued?wait=30").WithContext(ctx)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("request with a cancelled context answered %d", res.StatusCode)
	}
	gone := time.Now()
	select {
	case at := <-returned:
		if d := at.Sub(gone); d > 10*time.Second { // of the poll's 30 s
			t.Fatalf("handler returned %v after the client went away", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler still waiting 5s after the client went away")
	}
}

func TestLongPollWakesOnLeaseExpiry(t *testing.T) {
	e := newEnv(t)
	_, run := e.claimed(t, "L-1")
	results := e.poll(t, 30)
	time.Sleep(100 * time.Millisecond)
	e.clock.Advance(61 * time.Second)
	e.s.ExpireLeases()
	select {
	case r := <-results:
		if len(r.runs) != 1 || r.runs[0].ID != run.ID || r.runs[0].Attempt != 2 || r.runs[0].Status != trakkar.StatusQueued {
			t.Fatalf("poll got %+v, want the re-queued run at attempt 2", r)
		}
	case <-time.After(15 * time.Second): // of the poll's 30 s
		t.Fatal("re-queue did not wake the long poll")
	}
}

func TestClaimRace(t *testing.T) {
	e := newEnv(t)
	task, run := e.createTask(t, "RACE-1")
	const n = 24
	type result struct {
		runner string
		status int
		raw    []byte
	}
	results := make(chan result, n)
	var start sync.WaitGroup
	start.Add(1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runner := "runner-" + strconv.Itoa(i)
			start.Wait()
			status, raw := e.claim(t, run.ID, runner)
			results <- result{runner, status, raw}
		}()
	}
	start.Done()
	wg.Wait()
	close(results)
	var winners []string
	for r := range results {
		switch r.status {
		case 200:
			winners = append(winners, r.runner)
			c := decode[trakkar.Claim](t, r.raw)
			if c.Run.Status != trakkar.StatusClaimed || c.Task.ID != task.ID || c.LeaseSeconds != DefaultLeaseSeconds {
				t.Errorf("claim answer %+v", c)
			}
		default:
			wantError(t, r.status, r.raw, 409, "already_claimed")
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d winners %v, want exactly 1", len(winners), winners)
	}
	if got := e.runView(t, run.ID).RunnerID; got != winners[0] {
		t.Fatalf("run owned by %q, want winner %q", got, winners[0])
	}
}

func TestClaim(t *testing.T) {
	e := newEnv(t)
	_, run := e.createTask(t, "C-1")
	status, raw := e.claim(t, run.ID, "r1")
	wantOK(t, status, raw)
	first := decode[trakkar.Claim](t, raw)
	if first.Task.Key != "C-1" || first.Task.Title != "Title of C-1" || first.Task.Messages == nil || first.Run.Attempt != 1 {
		t.Fatalf("claim %+v", first)
	}

	_, cancelled := e.createTask(t, "C-2")
	if err := e.s.Stop(cancelled.TaskID); err != nil {
		t.Fatal(err)
	}
	_, done := e.claimed(t, "C-3")
	mustOK(t)(e.complete(t, done.ID, map[string]string{"outcome": "succeeded"}))

	tests := []struct {
		name   string
		run    string
		body   string
		status int
		code   string
	}{
		{"same runner again is idempotent", run.ID, `{"runner":{"id":"r1"}}`, 200, ""},
		{"other runner", run.ID, `{"runner":{"id":"r2"}}`, 409, "already_claimed"},
		{"unknown run", "run_nope", `{"runner":{"id":"r1"}}`, 404, "not_found"},
		{"missing runner id", run.ID, `{"runner":{}}`, 400, "bad_request"},
		{"malformed body", run.ID, `{"runner":`, 400, "bad_request"},
		{"cancelled before claim", cancelled.ID, `{"runner":{"id":"r1"}}`, 410, "gone"},
		{"completed", done.ID, `{"runner":{"id":"r1"}}`, 410, "gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := e.do(t, "POST", "/v1/agent/runs/"+tc.run+"/claim", tc.body)
			if tc.code != "" {
				wantError(t, status, raw, tc.status, tc.code)
				return
			}
			wantOK(t, status, raw)
			if c := decode[trakkar.Claim](t, raw); c.Run.ID != run.ID || c.Run.Status != trakkar.StatusClaimed {
				t.Fatalf("claim %+v", c)
			}
		})
	}
	if v := e.runView(t, run.ID); v.RunnerID != "r1" {
		t.Fatalf("owner %q after a rival claim, want r1", v.RunnerID)
	}
}

// Each attempt's winning claim is kept with the host and clone it came from.
func TestClaimHistory(t *testing.T) {
	e := newEnv(t)
	_, run := e.createTask(t, "CH-1")
	claim := func(id, host, clone string) {
		t.Helper()
		mustOK(t)(e.do(t, "POST", "/v1/agent/runs/"+run.ID+"/claim",
			map[string]any{"runner": map[string]string{"id": id, "hostname": host, "version": "test", "clone": clone}}))
	}
	claim("r1", "host-a", "/srv/a/web")
	claim("r1", "host-a", "/srv/a/web") // idempotent: no second entry
	e.clock.Advance(61 * time.Second)   // the lease (60 s) lapses: attempt 2
	claim("r2", "host-b", "/srv/b/web")
	want := []ClaimView{
		{Attempt: 1, RunnerID: "r1", Hostname: "host-a", Clone: "/srv/a/web"},
		{Attempt: 2, RunnerID: "r2", Hostname: "host-b", Clone: "/srv/b/web"},
	}
	if got := e.runView(t, run.ID).Claims; !reflect.DeepEqual(got, want) {
		t.Fatalf("claims = %+v, want %+v", got, want)
	}
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t)
	_, run := e.claimed(t, "H-1")
	_, queued := e.createTask(t, "H-2")

	steps := []struct {
		state      string
		wantStatus string
	}{
		{trakkar.StatePreparing, trakkar.StatusClaimed},
		{trakkar.StateRunning, trakkar.StatusRunning},
		{trakkar.StateVerifying, trakkar.StatusRunning},
		{trakkar.StatePublishing, trakkar.StatusRunning},
	}
	for i, st := range steps {
		status, raw := e.heartbeat(t, run.ID, st.state)
		wantOK(t, status, raw)
		reply := decode[trakkar.HeartbeatReply](t, raw)
		if reply.StopRequested || reply.LeaseSeconds != DefaultLeaseSeconds {
			t.Fatalf("heartbeat reply %+v", reply)
		}
		v := e.runView(t, run.ID)
		if v.Run.Status != st.wantStatus || v.LastState != st.state || v.Heartbeats != i+1 {
			t.Fatalf("after %s: status %s, last state %s, heartbeats %d", st.state, v.Run.Status, v.LastState, v.Heartbeats)
		}
	}

	errs := []struct {
		name, run, body string
		status          int
		code            string
	}{
		{"bad state", run.ID, `{"state":"sleeping"}`, 400, "bad_request"},
		{"missing state", run.ID, `{}`, 400, "bad_request"},
		{"unknown run", "run_nope", `{"state":"running"}`, 404, "not_found"},
		{"never claimed", queued.ID, `{"state":"running"}`, 409, "lease_lost"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := e.do(t, "POST", "/v1/agent/runs/"+tc.run+"/heartbeat", tc.body)
			wantError(t, status, raw, tc.status, tc.code)
		})
	}
}

func TestLeaseExpiry(t *testing.T) {
	for _, explicit := range []bool{true, false} {
		name := "lazily on the next request"
		if explicit {
			name = "ExpireLeases"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			_, run := e.claimed(t, "LE-1")
			mustOK(t)(e.heartbeat(t, run.ID, "running"))
			if a := acked(t)(e.events(t, run.ID, ev(1, "attempt one"))); a != 1 {
				t.Fatalf("acked %d", a)
			}

			// Heartbeats renew the lease: 40 s + 40 s with a heartbeat between is fine.
			e.clock.Advance(40 * time.Second)
			mustOK(t)(e.heartbeat(t, run.ID, "running"))
			e.clock.Advance(40 * time.Second)
			if explicit {
				e.s.ExpireLeases()
			}
			mustOK(t)(e.heartbeat(t, run.ID, "running"))

			// Then silence for a whole lease.
			e.clock.Advance(60 * time.Second)
			if explicit {
				e.s.ExpireLeases()
				v := e.runView(t, run.ID)
				if v.Run.Status != trakkar.StatusQueued || v.Run.Attempt != 2 || v.RunnerID != "" {
					t.Fatalf("after expiry: %+v owner %q", v.Run, v.RunnerID)
				}
			}
			status, raw := e.heartbeat(t, run.ID, "running")
			wantError(t, status, raw, 409, "lease_lost")
			status, raw = e.events(t, run.ID, ev(2, "late"))
			wantError(t, status, raw, 409, "lease_lost")
			status, raw = e.complete(t, run.ID, map[string]string{"outcome": "succeeded"})
			wantError(t, status, raw, 409, "lease_lost")

			status, raw = e.do(t, "GET", "/v1/agent/runs/queued", nil)
			wantOK(t, status, raw)
			runs := decode[struct{ Runs []trakkar.Run }](t, raw).Runs
			if len(runs) != 1 || runs[0].ID != run.ID || runs[0].Attempt != 2 {
				t.Fatalf("queued %+v, want the run at attempt 2", runs)
			}

			// Another runner takes it over. Seq belongs to the run: it reads
			// acked_seq with an empty batch and continues after it, and a seq
			// attempt one used is dropped as a duplicate.
			status, raw = e.claim(t, run.ID, "r2")
			wantOK(t, status, raw)
			if c := decode[trakkar.Claim](t, raw); c.Run.Attempt != 2 || c.Run.Status != trakkar.StatusClaimed {
				t.Fatalf("re-claim %+v", c.Run)
			}
			if a := acked(t)(e.do(t, "POST", "/v1/agent/runs/"+run.ID+"/events", map[string]any{"events": []trakkar.Event{}})); a != 1 {
				t.Fatalf("empty batch read acked %d, want attempt one's 1", a)
			}
			if a := acked(t)(e.events(t, run.ID, ev(1, "attempt two, reused seq"), ev(2, "attempt two"))); a != 2 {
				t.Fatalf("acked %d after attempt two's first event", a)
			}
			v := e.runView(t, run.ID)
			if len(v.Events) != 2 || v.Events[0].Text != "attempt one" || v.Events[1].Text != "attempt two" {
				t.Fatalf("events %+v", v.Events)
			}
			// A runner that names itself is told it lost the run even though it is held.
			status, _, raw = e.request(t, "POST", "/v1/agent/runs/"+run.ID+"/heartbeat", `{"state":"running"}`, map[string]string{RunnerIDHeader: "r1"})
			wantError(t, status, raw, 409, "lease_lost")
			status, _, raw = e.request(t, "POST", "/v1/agent/runs/"+run.ID+"/heartbeat", `{"state":"running"}`, map[string]string{RunnerIDHeader: "r2"})
			wantOK(t, status, raw)
		})
	}
}

func TestLeaseExpiryWhileStopping(t *testing.T) {
	e := newEnv(t)
	task, run := e.claimed(t, "LS-1")
	if err := e.s.Stop(task.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(61 * time.Second)
	if v := e.runView(t, run.ID); v.Run.Status != trakkar.StatusStopped || v.Run.Attempt != 1 {
		t.Fatalf("a stop-requested run whose lease ran out must end stopped, got %+v", v.Run)
	}
	status, raw := e.heartbeat(t, run.ID, "running")
	wantError(t, status, raw, 410, "gone")
	status, raw = e.complete(t, run.ID, map[string]string{"outcome": "stopped"})
	wantError(t, status, raw, 410, "gone")
}

func TestSmallLeaseRealClock(t *testing.T) {
	s := New(Options{LeaseSeconds: 1})
	ts := newServer(t, s)
	e := &env{s: s, ts: ts}
	_, run, err := s.CreateTask(NewTask{Key: "RC-1"})
	if err != nil {
		t.Fatal(err)
	}
	status, _, raw := e.request(t, "POST", "/v1/agent/runs/"+run.ID+"/claim", `{"runner":{"id":"r1"}}`, map[string]string{"Authorization": "Bearer " + DefaultToken})
	wantOK(t, status, raw)
	time.Sleep(1100 * time.Millisecond)
	s.ExpireLeases()
	if v, _ := s.Run(run.ID); v.Run.Status != trakkar.StatusQueued || v.Run.Attempt != 2 {
		t.Fatalf("run %+v, want re-queued at attempt 2", v.Run)
	}
}

package trakkar

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

type recordingObserver struct {
	mu      sync.Mutex
	reached int
	kinds   []string
}

func (o *recordingObserver) Reached() { o.mu.Lock(); o.reached++; o.mu.Unlock() }
func (o *recordingObserver) RequestFailed(kind string) {
	o.mu.Lock()
	o.kinds = append(o.kinds, kind)
	o.mu.Unlock()
}

func TestClientObserverKinds(t *testing.T) {
	tests := []struct {
		status  int
		reached int
		kind    string
	}{
		{http.StatusOK, 1, ""},
		{http.StatusUnauthorized, 1, KindUnauthorized},
		{http.StatusForbidden, 1, KindUnauthorized},
		{http.StatusNotFound, 1, KindNotFound},
		{http.StatusConflict, 1, KindConflict},
		{http.StatusGone, 1, KindGone},
		{http.StatusUnprocessableEntity, 1, KindRejected},
		{http.StatusTooManyRequests, 1, KindRateLimited},
		{http.StatusRequestTimeout, 0, KindServer},
		{http.StatusBadGateway, 0, KindServer},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"agent":{"id":"a","name":"n"}}`))
			}))
			defer srv.Close()
			obs := &recordingObserver{}
			c, err := NewClient(Options{BaseURL: srv.URL, Token: "trk_agent_x", MaxElapsed: time.Nanosecond, Observer: obs})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Me(context.Background())
			obs.mu.Lock()
			defer obs.mu.Unlock()
			var want []string
			if tt.kind != "" {
				want = []string{tt.kind}
			}
			if obs.reached != tt.reached || len(obs.kinds) != len(want) || (len(want) == 1 && obs.kinds[0] != want[0]) {
				t.Errorf("status %d: reached %d kinds %v; want reached %d kinds %v", tt.status, obs.reached, obs.kinds, tt.reached, want)
			}
		})
	}
}

func TestClientObserverNetworkAndCancel(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	obs := &recordingObserver{}
	c, err := NewClient(Options{BaseURL: url, Token: "trk_agent_x", MaxElapsed: time.Nanosecond, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Me(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = c.Me(ctx) // the caller's own cancel is no failure
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.reached != 0 || len(obs.kinds) != 1 || obs.kinds[0] != KindNetwork {
		t.Errorf("reached %d kinds %v; want one %q", obs.reached, obs.kinds, KindNetwork)
	}
}

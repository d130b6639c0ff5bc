package docker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"go.uber.org/zap"
)

// The engine records an OOM kill from its own event, which can land after the
// exit Wait reports: a SIGKILL's exit is inspected again until it shows, a
// little while at most, and any other exit once.
func TestWaitLooksAgainForALateOOMKill(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		code      int
		oomAt     int32 // the inspection from which the state says OOMKilled; 0: never
		wantOOM   bool
		wantLooks int32
	}{
		{"recorded at once", 137, 1, true, 1},
		{"recorded late", 137, 3, true, 3},
		{"killed, not for memory", 137, 0, false, 1 + oomLooks},
		{"ordinary exit", 1, 0, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var looks atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.HasSuffix(r.URL.Path, "/wait"):
					fmt.Fprintf(w, `{"StatusCode":%d}`, tc.code)
				case strings.HasSuffix(r.URL.Path, "/json"):
					n := looks.Add(1)
					fmt.Fprintf(w, `{"Id":"c1","State":{"Status":"exited","ExitCode":%d,"OOMKilled":%v}}`,
						tc.code, tc.oomAt > 0 && n >= tc.oomAt)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithVersion("1.41"))
			if err != nil {
				t.Fatal(err)
			}
			c := &Client{cli: cli, log: zap.NewNop()}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := c.Wait(ctx, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tc.code || st.OOMKilled != tc.wantOOM || looks.Load() != tc.wantLooks {
				t.Errorf("exit %d oom %v after %d inspections; want %d %v after %d",
					st.Code, st.OOMKilled, looks.Load(), tc.code, tc.wantOOM, tc.wantLooks)
			}
		})
	}
}

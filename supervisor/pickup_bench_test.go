package supervisor_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// BenchmarkPickupLatency measures how fast a delegated task reaches its agent:
// from the moment the task is delegated in the stand-in to the supervisor's
// "Container started" event (long-poll wake-up, claim, fetch, worktree,
// container create and start), and on to the run's completion. Run with:
//
//	go test -run '^$' -bench PickupLatency -benchtime 5x ./supervisor/
func BenchmarkPickupLatency(b *testing.B) {
	e := newEnv(b, envOpts{})
	e.start(e.config(nil))
	var pickup, total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := "PICK-" + strconv.Itoa(i+1)
		delegated := time.Now()
		if _, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: "Quick " + key, Description: "fake:scenario=noop\n"}); err != nil {
			b.Fatal(err)
		}
		rv := e.waitCompleted(key, 60*time.Second)
		total += time.Since(delegated)
		started := time.Time{}
		for _, ev := range rv.Events {
			if ev.Type == trakkar.EventStatus && strings.HasPrefix(ev.Text, "Container started") {
				started = ev.At
			}
		}
		if started.IsZero() {
			b.Fatalf("no container start event:\n%s", eventTexts(rv.Events))
		}
		pickup += started.Sub(delegated)
	}
	b.StopTimer()
	n := time.Duration(b.N)
	b.ReportMetric(float64((pickup / n).Milliseconds()), "pickup-ms/op")
	b.ReportMetric(float64((total / n).Milliseconds()), "done-ms/op")
	b.Logf("delegated → container started: %s; → run completed: %s (mean of %d)", pickup/n, total/n, b.N)
}

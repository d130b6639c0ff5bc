package supervisor

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// lingeringRuntime is an engine still cleaning up a create cut short: remove
// answers at once, but the container stays listed for a few more looks.
type lingeringRuntime struct {
	Runtime // only List, Stop and Remove are called
	mu      sync.Mutex
	listed  int // looks left before it disappears
	removes int
}

func (f *lingeringRuntime) List(context.Context, map[string]string) ([]docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listed == 0 {
		return nil, nil
	}
	f.listed--
	return []docker.Container{{ID: "half-created", State: "created"}}, nil
}

func (f *lingeringRuntime) Stop(context.Context, string, time.Duration) error { return nil }

func (f *lingeringRuntime) Remove(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removes++
	return nil // "removal already in progress" counts as done
}

// A run recovered in its preparing phase starts its container only once the
// engine no longer lists the one the killed runner left half created.
func TestDiscardRunContainersWaitsUntilGone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		listed  int
		removes int
	}{
		{"none left", 0, 0},
		{"removed at once", 1, 1},
		{"still listed after remove", 4, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt := &lingeringRuntime{listed: c.listed}
			s := &Supervisor{rt: rt, log: zap.NewNop(), cfg: Config{StopGrace: time.Second}}
			r := &run{claim: trakkar.Claim{Run: trakkar.Run{ID: "run_1"}}, log: zap.NewNop()}
			s.discardRunContainers(context.Background(), r)
			if cs, _ := rt.List(context.Background(), nil); len(cs) != 0 {
				t.Fatalf("returned while the engine still lists %v", cs)
			}
			if rt.removes != c.removes {
				t.Fatalf("%d removes, want %d", rt.removes, c.removes)
			}
		})
	}
}

package docker

import (
	"testing"
	"time"
)

// A busy container's CPU and memory come from the engine; an exited one has
// a state and no usage; a removed one is not found.
func TestUsage(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 60*time.Second)
	s := probeSpec(img, "spin", "40")
	s.Resources = Resources{MemoryBytes: 256 << 20, NanoCPUs: 1e9, PidsLimit: 64}
	id, waitC := startContainer(ctx, t, c, s)
	ready := newLineWatcher("ready")
	go func() { _ = c.Logs(ctx, id, true, ready, nil) }()
	select {
	case <-ready.seen:
	case <-time.After(slowEngine * 20 * time.Second):
		t.Fatal("probe never became ready")
	}
	u, err := c.Usage(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if u.State != "running" || u.StartedAt.IsZero() {
		t.Errorf("state %q started %v, want running with a start time", u.State, u.StartedAt)
	}
	// One CPU spinning under a 1-CPU cap: some use, never more than the cap
	// allows (with slack for sampling); a loaded CI host may give it little.
	if u.CPUPercent <= 0 || u.CPUPercent > 150 {
		t.Errorf("CPU %.1f%%, want a busy container within its 1-CPU cap", u.CPUPercent)
	}
	if u.MemoryBytes < 40<<20 || u.MemoryLimit != 256<<20 {
		t.Errorf("memory %d of %d, want ≥ 40 MiB of 256 MiB", u.MemoryBytes, u.MemoryLimit)
	}

	if err := c.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	<-waitC
	u, err = c.Usage(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if u.State != "exited" || u.CPUPercent != 0 || u.MemoryBytes != 0 {
		t.Errorf("after stop: %+v, want exited with no usage", u)
	}
	if err := c.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Usage(ctx, id); !IsNotFound(err) {
		t.Errorf("usage of a removed container: %v, want not found", err)
	}
}

package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Usage is a container's state and, while it runs, what it uses, as the
// engine reports them.
type Usage struct {
	State     string    // created, running, exited…
	StartedAt time.Time // zero if never started
	// CPUPercent is over the engine's last sampling interval, 100 per CPU
	// fully used (as `docker stats` shows it); 0 unless running.
	CPUPercent float64
	// MemoryBytes is the memory in use less the page cache the kernel can
	// drop (as `docker stats` shows it); MemoryLimit the container's cap.
	MemoryBytes, MemoryLimit uint64
}

// Usage reads a container's state and, for a running one, one stats sample.
// The engine takes about a second to sample CPU use twice. A missing
// container is an error for which IsNotFound is true.
func (c *Client) Usage(ctx context.Context, id string) (Usage, error) {
	info, err := c.cli.ContainerInspect(ctx, id)
	if err != nil {
		return Usage{}, fmt.Errorf("inspect container: %w", err)
	}
	var u Usage
	if st := info.State; st != nil {
		u.State = string(st.Status)
		if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && t.Year() > 1 {
			u.StartedAt = t
		}
	}
	if u.State != string(container.StateRunning) {
		return u, nil
	}
	resp, err := c.cli.ContainerStats(ctx, id, false)
	if err != nil {
		return u, fmt.Errorf("container stats: %w", err)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s); err != nil {
		return u, fmt.Errorf("decode container stats: %w", err)
	}
	u.CPUPercent = cpuPercent(s)
	u.MemoryBytes, u.MemoryLimit = memoryInUse(s.MemoryStats), s.MemoryStats.Limit
	return u, nil
}

// cpuPercent is the CPU use between the two samples of s, as docker stats
// computes it on Linux.
func cpuPercent(s container.StatsResponse) float64 {
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	cpus := float64(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpuDelta <= 0 || sysDelta <= 0 || cpus == 0 {
		return 0
	}
	return cpuDelta / sysDelta * cpus * 100
}

// memoryInUse is usage less the inactive page cache (cgroup v2 names it
// inactive_file, v1 total_inactive_file), as docker stats shows it.
func memoryInUse(m container.MemoryStats) uint64 {
	cache := m.Stats["inactive_file"]
	if v, ok := m.Stats["total_inactive_file"]; ok {
		cache = v
	}
	if cache < m.Usage {
		return m.Usage - cache
	}
	return m.Usage
}

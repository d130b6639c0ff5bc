package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/supervisor"
)

type fakeUsage map[string]docker.Usage

func (f fakeUsage) Usage(_ context.Context, id string) (docker.Usage, error) {
	u, ok := f[id]
	if !ok {
		return docker.Usage{}, fmt.Errorf("inspect container: %w", errNotFound{})
	}
	return u, nil
}

// errNotFound satisfies the errdefs not-found check docker.IsNotFound uses.
type errNotFound struct{}

func (errNotFound) Error() string { return "no such container" }
func (errNotFound) NotFound()     {}

func TestDescribeAndPrintRuns(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	running := supervisor.RunInfo{TaskKey: "WEB-1", Phase: "running", ClaimedAt: now.Add(-150 * time.Second), ContainerID: "c0ffee0000000000aa",
		Workspace: "/r/.trakkar-worktrees/web-1", LastEvent: &supervisor.LastEvent{At: now.Add(-5 * time.Second), Type: "message", Text: "Editing\nmain.go"}}
	gone := supervisor.RunInfo{TaskKey: "WEB-2", Phase: "finishing", ClaimedAt: now.Add(-time.Minute), ContainerID: "deadbeef"}
	kept := supervisor.RunInfo{TaskKey: "WEB-3", Phase: "done", Outcome: "failed", Reason: "verify failed", Kept: true,
		ClaimedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-50 * time.Minute), Workspace: "/r/.trakkar-worktrees/web-3"}
	tests := []struct {
		name      string
		runs      []supervisor.RunInfo
		engine    usageReader
		engineErr error
		want      []string
	}{
		{"running container", []supervisor.RunInfo{running},
			fakeUsage{"c0ffee0000000000aa": {State: "running", CPUPercent: 42.5, MemoryBytes: 300 << 20, MemoryLimit: 4 << 30}},
			nil, []string{"WEB-1", "running", "2m30s", "c0ffee000000 running", "42.5%", "300 MiB / 4096 MiB", "5s ago message: Editing main.go", "/r/.trakkar-worktrees/web-1"}},
		{"container removed", []supervisor.RunInfo{gone}, fakeUsage{}, nil, []string{"WEB-2", "finishing", "deadbeef removed"}},
		{"engine unreachable", []supervisor.RunInfo{gone}, nil, errors.New("docker is not reachable"),
			[]string{"deadbeef unknown", "WEB-2: container deadbeef: docker is not reachable"}},
		{"kept after failing", []supervisor.RunInfo{kept}, nil, nil, []string{"done (failed), kept", "10m0s", "WEB-3: verify failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := statusReport{RunnerID: "rnr_x", Runs: describeRuns(context.Background(), tt.runs, tt.engine, tt.engineErr, now)}
			var b bytes.Buffer
			printStatus(&b, rep, now)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// writeRecord writes a run record as the supervisor does (supervisor/record.go).
func writeRecord(t *testing.T, repo, folder string, rec map[string]any, last *supervisor.LastEvent) {
	t.Helper()
	dir := filepath.Join(repo, ".trakkar-worktrees", ".state", folder)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if last != nil {
		b, _ := json.Marshal(last)
		if err := os.WriteFile(filepath.Join(dir, "last-event.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func record(runner, key, phase, containerID, workspace string, claimed time.Time) map[string]any {
	return map[string]any{
		"runner_id": runner, "phase": phase, "container_id": containerID, "claimed_at": claimed, "updated_at": time.Now(),
		"claim":    map[string]any{"run": map[string]any{"id": "run_" + key, "task_id": "tsk_" + key, "attempt": 1}, "task": map[string]any{"id": "tsk_" + key, "key": key}},
		"worktree": map[string]any{"Path": workspace, "Branch": "trakkar/" + strings.ToLower(key)},
	}
}

// The binary's status, with no supervisor running, shows this runner's
// working run with its real container's CPU and memory from the engine, and
// a kept run; a finished run whose workspace is gone and another runner's run
// are left out.
func TestStatusOfTheBinary(t *testing.T) {
	dc := testimage.Docker(t)
	image := testimage.Ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runner := "rnr_status_" + testimage.RunID()
	id, err := dc.Create(ctx, docker.Spec{
		Name: runner, Image: image, User: "1000:1000",
		Entrypoint: []string{"/bin/sh", "-c", "while :; do :; done"},
		Labels:     map[string]string{"in.trakkar.agent.test": runner},
		Resources:  docker.Resources{MemoryBytes: 128 << 20, NanoCPUs: 1e9, PidsLimit: 32},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = dc.Remove(rctx, id)
	})
	if _, err := dc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}

	repo := gitInit(t, "https://github.com/acme/web.git")
	wt := filepath.Join(repo, ".trakkar-worktrees", "web-1")
	kept := filepath.Join(repo, ".trakkar-worktrees", "web-2")
	for _, d := range []string{wt, kept} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	claimed := time.Now().Add(-90 * time.Second).UTC()
	writeRecord(t, repo, "web-1", record(runner, "WEB-1", "running", id, wt, claimed),
		&supervisor.LastEvent{At: time.Now().UTC(), Type: "status", Text: "Container started (worker)"})
	writeRecord(t, repo, "web-2", record(runner, "WEB-2", "done", "", kept, claimed), nil)
	writeRecord(t, repo, "web-3", record(runner, "WEB-3", "done", "", filepath.Join(repo, ".trakkar-worktrees", "web-3"), claimed), nil)
	writeRecord(t, repo, "web-4", record("rnr_someone_else", "WEB-4", "running", "", "", claimed), nil)

	env := []string{"TRAKKAR_RUNNER_ID=" + runner}
	asked := time.Now()
	code, out, stderr := runBinaryOut(t, repo, []string{"status", "--json"}, env)
	t.Logf("status --json took %s", time.Since(asked).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, stderr)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if rep.RunnerID != runner || rep.Supervisor.Running {
		t.Errorf("runner %q supervisor %+v; want %q, not running", rep.RunnerID, rep.Supervisor, runner)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].TaskKey != "WEB-1" || rep.Runs[1].TaskKey != "WEB-2" {
		t.Fatalf("runs %+v; want WEB-1 and the kept WEB-2", rep.Runs)
	}
	r := rep.Runs[0]
	c := r.Container
	// Any CPU at all: on a loaded CI host a busy loop may get little of it.
	if c == nil || c.State != "running" || c.CPUPercent <= 0 || c.MemoryBytes == 0 || c.MemoryLimit != 128<<20 {
		t.Errorf("WEB-1 container %+v; want running, busy, with its 128 MiB limit", c)
	}
	if r.Phase != "running" || r.ElapsedSeconds < 90 || r.ElapsedSeconds > 900 || r.Workspace != wt ||
		r.LastEvent == nil || r.LastEvent.Text != "Container started (worker)" {
		t.Errorf("WEB-1 %+v", r)
	}
	if !rep.Runs[1].Kept {
		t.Errorf("WEB-2 not marked kept: %+v", rep.Runs[1])
	}

	code, out, stderr = runBinaryOut(t, repo, []string{"status"}, env)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	t.Logf("status:\n%s", out)
	for _, w := range []string{"runner " + runner + " (not running)", "WEB-1", "running", "status: Container started (worker)", wt, "/ 128 MiB"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
}

// runBinaryOut runs the binary and returns its exit status, stdout and stderr.
func runBinaryOut(t *testing.T, dir string, args, env []string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run: %v", err)
	return -1, "", ""
}

package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
)

// These tests need a real Docker engine and fail, never skip, without one.

func TestNewUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/trakkar/docker.sock")
	ctx, cancel := context.WithTimeout(context.Background(), slowEngine*10*time.Second)
	defer cancel()
	c, err := New(ctx, zap.NewNop())
	if err == nil {
		_ = c.Close()
		t.Fatal("New succeeded against a missing socket")
	}
	for _, want := range []string{"docker is not reachable at unix:///nonexistent/trakkar/docker.sock", "DOCKER_HOST"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	c := newTestClient(t)
	img := probeImage(t, c)
	for _, code := range []int{0, 3, 42} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			st, _, _ := run(t, c, probeSpec(img, "exit", strconv.Itoa(code)))
			if st.Code != code || st.OOMKilled {
				t.Fatalf("status %+v, want code %d", st, code)
			}
		})
	}
}

func TestWaitExisting(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 30*time.Second)
	id := create(t, c, probeSpec(img, "exit", "5"))
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // once while (or just after) it runs, once when long exited
		st, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Code != 5 {
			t.Fatalf("wait #%d: code %d, want 5", i, st.Code)
		}
	}
	info, err := c.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Running || info.State.ExitCode != 5 || info.State.Status != "exited" {
		t.Fatalf("state %+v", info.State)
	}
}

func TestLogsDemuxFollow(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 30*time.Second)
	id, waitC := startContainer(ctx, t, c, probeSpec(img, "out"))
	var stdout, stderr strings.Builder
	if err := c.Logs(ctx, id, true, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	// Follow ends only when the container's output ends, so it has exited by now.
	select {
	case res := <-waitC:
		if res.Err != nil || res.Status.Code != 0 {
			t.Fatalf("wait %+v", res)
		}
	case <-time.After(slowEngine * 5 * time.Second):
		t.Fatal("logs returned but the container did not exit")
	}
	if got, want := stdout.String(), "out-0\nout-1\nout-2\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got, want := stderr.String(), "err-0\nerr-1\nerr-2\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}

func TestLogsAndWaitEndWithContext(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 30*time.Second)
	id := create(t, c, probeSpec(img, "term"))
	runCtx, stopRun := context.WithCancel(ctx)
	waitC, err := c.Start(runCtx, id)
	if err != nil {
		t.Fatal(err)
	}
	logCtx, stopLogs := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stopLogs()
	start := time.Now()
	err = c.Logs(logCtx, id, true, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("logs error %v, want deadline exceeded", err)
	}
	// The probe runs until it is signalled, so a Logs that ignored its context
	// would return only when the test's context ends.
	if d := time.Since(start); d > slowEngine*3*time.Second {
		t.Fatalf("logs took %v to notice its context ended", d)
	}
	stopRun()
	select {
	case res := <-waitC:
		if !errors.Is(res.Err, context.Canceled) {
			t.Fatalf("wait result %+v, want context canceled", res)
		}
	case <-time.After(slowEngine * 5 * time.Second):
		t.Fatal("wait did not end with its context")
	}
}

// fallbackStop is the stop timeout TestStopGrace's containers carry: the
// engine's grace when a stop request names none.
const fallbackStop = 120 * time.Second

func TestStopGrace(t *testing.T) {
	t.Parallel()
	c := newTestClient(t)
	img := probeImage(t, c)
	tests := []struct {
		mode     string
		grace    time.Duration
		min, max time.Duration
		code     int
	}{
		// Ignores SIGTERM: killed once the grace period is over, and long
		// before the container's own stop timeout (fallbackStop), which a
		// grace that never reached the engine would give. A loaded engine's
		// stop alone took 14 s in CI, so the bound is far from both.
		{"ignore-term", time.Second, time.Second, fallbackStop / 2, 137},
		// Dies on SIGTERM: long before the grace period.
		{"term", time.Minute, 0, 30 * time.Second, 143},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), tt.grace+slowEngine*30*time.Second)
			defer cancel()
			id := createWithStopTimeout(t, c, probeSpec(img, tt.mode), fallbackStop)
			waitC, err := c.Start(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			// Stop only once the probe has set up its signal handling.
			ready := newLineWatcher("ready")
			go func() { _ = c.Logs(ctx, id, true, ready, nil) }()
			select {
			case <-ready.seen:
			case <-time.After(slowEngine * 10 * time.Second):
				t.Fatal("probe never became ready")
			}
			start := time.Now()
			if err := c.Stop(ctx, id, tt.grace); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("%s: stop took %v with grace %v", tt.mode, took, tt.grace)
			if took < tt.min || took > tt.max {
				t.Fatalf("stop took %v, want between %v and %v", took, tt.min, tt.max)
			}
			res := <-waitC
			if res.Err != nil || res.Status.Code != tt.code {
				t.Fatalf("wait %+v, want exit %d", res, tt.code)
			}
			// Stopping a stopped container is fine.
			if err := c.Stop(ctx, id, time.Second); err != nil {
				t.Fatalf("second stop: %v", err)
			}
		})
	}
}

// TestInspectHardening is the security inspect test: every hardening field as
// the engine recorded it, plus what the process sees from inside.
func TestInspectHardening(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 30*time.Second)
	roDir, rwDir := t.TempDir(), t.TempDir()
	s := probeSpec(img, "status")
	s.Name = "trakkar-docker-test-" + uuid.NewString()[:8]
	s.Network = "none"
	s.WorkingDir = "/workspace"
	s.Mounts = []Mount{{Source: rwDir, Target: "/workspace"}, {Source: roDir, Target: "/trakkar/in", ReadOnly: true}}
	s.Tmpfs = map[string]string{"/home/agent": "rw,exec,size=64m,uid=1000,gid=1000"}
	s.Resources = Resources{MemoryBytes: 256 << 20, NanoCPUs: 5e8, PidsLimit: 64}
	id := create(t, c, s)

	info, err := c.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	check := func(field string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	check("ID", info.ID, id)
	check("Name", info.Name, s.Name)
	check("User", info.User, "1000:1000")
	check("Labels", info.Labels[testLabel], "1")
	check("CapDrop", info.CapDrop, []string{"ALL"})
	check("CapAdd", len(info.CapAdd), 0)
	check("SecurityOpt", info.SecurityOpt, []string{"no-new-privileges:true"})
	for _, o := range info.SecurityOpt {
		if strings.Contains(o, "unconfined") {
			t.Errorf("security opt %q disables a profile", o)
		}
	}
	check("ReadonlyRootfs", info.ReadonlyRootfs, true)
	check("Privileged", info.Privileged, false)
	check("Init", info.Init, true)
	check("PidsLimit", info.PidsLimit, 64)
	check("Memory", info.Memory, 256<<20)
	check("MemorySwap", info.MemorySwap, 256<<20)
	check("NanoCPUs", info.NanoCPUs, int64(5e8))
	check("Ulimits", info.Ulimits, []Ulimit{{Name: "nofile", Soft: NofileLimit, Hard: NofileLimit}})
	check("LogConfig.Type", info.LogConfig.Type, "json-file")
	check("LogConfig.max-size", info.LogConfig.Config["max-size"], "10m")
	check("LogConfig.max-file", info.LogConfig.Config["max-file"], "3")
	check("NetworkMode", info.NetworkMode, "none")
	check("IpcMode", info.IpcMode, "private")
	for field, v := range map[string]string{"PidMode": info.PidMode, "UTSMode": info.UTSMode, "UsernsMode": info.UsernsMode} {
		if v == "host" || strings.HasPrefix(v, "container:") {
			t.Errorf("%s = %q", field, v)
		}
	}
	check("CgroupnsMode", info.CgroupnsMode, "private")
	check("Devices", info.Devices, 0)
	check("PortBindings", info.PortBindings, 0)
	check("PublishAllPorts", info.PublishAllPorts, false)
	check("Tmpfs", info.Tmpfs, map[string]string{"/home/agent": "rw,exec,size=64m,uid=1000,gid=1000", "/tmp": DefaultTmpOpts})
	wantMounts := map[string]MountInfo{
		"/workspace":  {Type: "bind", Source: rwDir, Target: "/workspace", RW: true},
		"/trakkar/in": {Type: "bind", Source: roDir, Target: "/trakkar/in", RW: false},
	}
	check("len(Mounts)", len(info.Mounts), len(wantMounts))
	for _, m := range info.Mounts {
		check("mount "+m.Target, m, wantMounts[m.Target])
		if strings.HasSuffix(m.Source, ".sock") || strings.HasSuffix(m.Target, ".sock") {
			t.Errorf("socket mounted: %+v", m)
		}
	}

	// What the process sees from inside.
	waitC, err := c.Start(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res := <-waitC; res.Err != nil || res.Status.Code != 0 {
		t.Fatalf("status probe: %+v", res)
	}
	out, _ := logs(ctx, t, c, id)
	seen := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				seen[k] = v
			}
		}
	}
	for k, want := range map[string]string{
		"uid": "1000", "gid": "1000",
		"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": "0000000000000000", "CapAmb": "0000000000000000",
		"NoNewPrivs": "1", "Seccomp": "2", "nofile": "4096:4096", "interfaces": "lo", "home-write": "ok",
	} {
		if seen[k] != want {
			t.Errorf("inside the container %s=%q, want %q (output %q)", k, seen[k], want, out)
		}
	}
}

func TestCreateRejects(t *testing.T) {
	t.Parallel()
	c := newTestClient(t)
	img := probeImage(t, c)
	runID := uuid.NewString()
	dir := t.TempDir()
	tests := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"root user", func(s *Spec) { s.User = "0:0" }, "root"},
		{"root by name", func(s *Spec) { s.User = "root" }, "uid:gid"},
		{"docker socket", func(s *Spec) { s.Mounts = []Mount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}} }, "socket"},
		{"relative mount", func(s *Spec) { s.Mounts = []Mount{{Source: "relative/dir", Target: "/workspace"}} }, "absolute"},
		{"host network", func(s *Spec) { s.Network = "host" }, "host"},
		{"bad tmpfs", func(s *Spec) { s.Tmpfs = map[string]string{"tmp": "rw"} }, "absolute"},
		{"ok then bad mount", func(s *Spec) {
			s.Mounts = []Mount{{Source: dir, Target: "/workspace"}, {Source: "/run", Target: "/run"}}
		}, "socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), slowEngine*10*time.Second)
			defer cancel()
			s := probeSpec(img, "exit", "0")
			s.Labels["in.trakkar.agent.test.run"] = runID
			tt.edit(&s)
			id, err := c.Create(ctx, s)
			if err == nil {
				_ = c.Remove(ctx, id)
				t.Fatalf("create accepted the spec")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), slowEngine*10*time.Second)
	defer cancel()
	left, err := c.List(ctx, map[string]string{"in.trakkar.agent.test.run": runID})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("rejected specs left containers: %+v", left)
	}
}

func TestListByLabels(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 30*time.Second)
	runA, runB := uuid.NewString(), uuid.NewString()
	var idsA []string
	for i := 0; i < 2; i++ {
		s := probeSpec(img, "exit", "0")
		s.Labels["in.trakkar.agent.test.run"] = runA
		s.Labels["in.trakkar.agent.test.n"] = strconv.Itoa(i)
		idsA = append(idsA, create(t, c, s))
	}
	sB := probeSpec(img, "exit", "0")
	sB.Labels["in.trakkar.agent.test.run"] = runB
	idB := create(t, c, sB)
	// One of A runs and exits, so List must return every state.
	if _, err := c.Start(ctx, idsA[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, idsA[0]); err != nil {
		t.Fatal(err)
	}

	ids := func(cs []Container) []string {
		var out []string
		for _, x := range cs {
			out = append(out, x.ID)
		}
		slices.Sort(out)
		return out
	}
	got, err := c.List(ctx, map[string]string{testLabel: "1", "in.trakkar.agent.test.run": runA})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(idsA)
	slices.Sort(want)
	if !slices.Equal(ids(got), want) {
		t.Fatalf("list run A = %v, want %v", ids(got), want)
	}
	for _, x := range got {
		if x.Image != img || x.Labels["in.trakkar.agent.test.run"] != runA || x.Created.IsZero() || x.Name == "" {
			t.Errorf("entry %+v", x)
		}
		if x.ID == idsA[0] && x.State != "exited" || x.ID == idsA[1] && x.State != "created" {
			t.Errorf("entry %s state %q", x.ID, x.State)
		}
	}
	got, err = c.List(ctx, map[string]string{"in.trakkar.agent.test.run": runA, "in.trakkar.agent.test.n": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{idsA[1]}) {
		t.Fatalf("list run A n=1 = %v, want %v", ids(got), idsA[1])
	}
	got, err = c.List(ctx, map[string]string{"in.trakkar.agent.test.run": runB})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{idB}) {
		t.Fatalf("list run B = %v, want %v", ids(got), idB)
	}
	got, err = c.List(ctx, map[string]string{"in.trakkar.agent.test.run": uuid.NewString()})
	if err != nil || len(got) != 0 {
		t.Fatalf("list unknown run = %v, %v", got, err)
	}
}

func TestRemoveIdempotent(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 30*time.Second)
	id := create(t, c, probeSpec(img, "term"))
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Force: removes the running container.
	if err := c.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, id); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := c.Inspect(ctx, id); !IsNotFound(err) {
		t.Fatalf("inspect after remove: %v, want not found", err)
	}
	if err := c.Stop(ctx, id, time.Second); err != nil {
		t.Fatalf("stop of a removed container: %v", err)
	}
	if _, err := c.Wait(ctx, id); !IsNotFound(err) {
		t.Fatalf("wait on a removed container: %v, want not found", err)
	}
}

func TestOOMKilled(t *testing.T) {
	t.Parallel()
	c := newTestClient(t)
	img := probeImage(t, c)
	s := probeSpec(img, "alloc", "512")
	s.Resources.MemoryBytes = 32 << 20
	// On a busy host the engine now and then never records an OOM kill (its
	// event is lost: 1 container in 40 here, still unrecorded minutes later),
	// so the kill is tried up to three times; every one must be a SIGKILL, and
	// the flag must come through at least once.
	for attempt := 1; ; attempt++ {
		st, stdout, _ := run(t, c, s)
		t.Logf("engine reported %+v for a 512 MiB allocation under a 32 MiB limit", st)
		if strings.Contains(stdout, "allocated") {
			t.Fatalf("the probe allocated past the limit: %q", stdout)
		}
		if st.Code != 137 {
			t.Fatalf("exit code %d, want 137", st.Code)
		}
		if st.OOMKilled {
			return
		}
		if attempt == 3 {
			t.Fatalf("OOMKilled false in %d kills; the engine did not report the OOM kill", attempt)
		}
	}
}

func TestReadonlyRootfs(t *testing.T) {
	t.Parallel()
	c := newTestClient(t)
	img := probeImage(t, c)
	st, stdout, stderr := run(t, c, probeSpec(img, "rootfs"))
	if st.Code != 0 {
		t.Fatalf("exit %d: %s %s", st.Code, stdout, stderr)
	}
	for _, want := range []string{"root-write=err:", "read-only file system", "tmp-write=ok", "tmp-exec=ok"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output %q lacks %q", stdout, want)
		}
	}
}

func TestPidsLimit(t *testing.T) {
	t.Parallel()
	c := newTestClient(t)
	img := probeImage(t, c)
	const limit = 16
	s := probeSpec(img, "forks", "200")
	s.Resources.PidsLimit = limit
	st, stdout, stderr := run(t, c, s)
	if st.Code != 0 {
		t.Fatalf("exit %d (1 means every fork succeeded): %q %q", st.Code, stdout, stderr)
	}
	var n int
	var errText string
	if _, err := fmt.Sscanf(stdout, "forks=%d err=%s", &n, &errText); err != nil {
		t.Fatalf("parse %q: %v", stdout, err)
	}
	if n >= limit || !strings.Contains(stdout, "resource temporarily unavailable") {
		t.Fatalf("forked %d processes under a limit of %d: %q", n, limit, stdout)
	}
	t.Logf("pids limit %d stopped the fork loop after %d children", limit, n)
}

func TestImageExists(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 10*time.Second)
	ok, err := c.ImageExists(ctx, img)
	if err != nil || !ok {
		t.Fatalf("ImageExists(%s) = %v, %v", img, ok, err)
	}
	ok, err = c.ImageExists(ctx, "trakkar-agent/does-not-exist:"+uuid.NewString()[:8])
	if err != nil || ok {
		t.Fatalf("ImageExists(missing) = %v, %v", ok, err)
	}
}

func TestCreateMissingSourceFails(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 10*time.Second)
	s := probeSpec(img, "exit", "0")
	s.Mounts = []Mount{{Source: filepath.Join(os.TempDir(), "trakkar-missing-"+uuid.NewString()), Target: "/workspace"}}
	id, err := c.Create(ctx, s)
	if err == nil {
		_ = c.Remove(ctx, id)
		t.Fatal("create with a missing bind source succeeded")
	}
}

// LogsSince stamps every line and, given the stamp of a line, continues right
// after it: what a restarted supervisor relies on.
func TestLogsSinceContinuesAfterALine(t *testing.T) {
	t.Parallel()
	c, img, ctx := probeTest(t, 30*time.Second)
	id, waitC := startContainer(ctx, t, c, probeSpec(img, "out"))
	<-waitC
	var all strings.Builder
	if err := c.LogsSince(ctx, id, time.Time{}, false, &all, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(all.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 stamped lines, got %q", lines)
	}
	stamp, text, ok := strings.Cut(lines[0], " ")
	at, err := time.Parse(time.RFC3339Nano, stamp)
	if !ok || err != nil || text != "out-0" {
		t.Fatalf("line %q: stamp %v text %q", lines[0], err, text)
	}
	var rest strings.Builder
	if err := c.LogsSince(ctx, id, at.Add(time.Nanosecond), false, &rest, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(rest.String()), "\n")
	if len(got) != 2 || !strings.HasSuffix(got[0], " out-1") || !strings.HasSuffix(got[1], " out-2") {
		t.Fatalf("after the first line: %q", got)
	}
}

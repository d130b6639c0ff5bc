package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/pkg/jsonmessage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testLabel marks every container the tests create, so a leftover is easy to find.
const testLabel = "in.trakkar.agent.test"

const probeRepo = "trakkar-agent/docker-test-probe"

// slowEngine stretches every bound that only ends a failing test: the engine
// is shared, and in CI it serves several test packages and other jobs at once,
// so a call that takes milliseconds alone can take seconds. A passing test
// takes exactly as long as before.
const slowEngine = 4

var (
	probeOnce sync.Once
	probeRef  string
	probeErr  error
)

func newTestClient(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), slowEngine*15*time.Second)
	defer cancel()
	c, err := New(ctx, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("docker is required for these tests: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// probeImage builds (once per test process) a scratch image holding only the
// static probe program, tagged by the binary's hash so an unchanged probe is reused.
func probeImage(t *testing.T, c *Client) string {
	t.Helper()
	probeOnce.Do(func() { probeRef, probeErr = buildProbe(c) })
	if probeErr != nil {
		t.Fatalf("build probe image: %v", probeErr)
	}
	return probeRef
}

func buildProbe(c *Client) (string, error) {
	dir, err := os.MkdirTemp("", "docker-probe-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build probe: %w\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	dockerfile := "FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n"
	sum := sha256.Sum256(append(data, dockerfile...))
	ref := probeRepo + ":" + hex.EncodeToString(sum[:8])

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if ok, err := c.ImageExists(ctx, ref); err != nil {
		return "", err
	} else if ok {
		return ref, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"probe", 0o755, data}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	resp, err := c.cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{ref}, Remove: true, ForceRemove: true, Labels: map[string]string{testLabel: "1"},
	})
	if err != nil {
		return "", fmt.Errorf("image build: %w", err)
	}
	defer resp.Body.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		return "", fmt.Errorf("image build: %w", err)
	}
	return ref, nil
}

// probeSpec is a hardened spec running the probe with args, labelled for cleanup.
func probeSpec(image string, args ...string) Spec {
	return Spec{
		Image:  image,
		Cmd:    args,
		User:   "1000:1000",
		Labels: map[string]string{testLabel: "1"},
	}
}

// create makes a container and removes it when the test ends, with a fresh
// context so cleanup runs even after the test's own context expired.
func create(t *testing.T, c *Client, s Spec) string {
	t.Helper()
	return createWithStopTimeout(t, c, s, 0)
}

// createWithStopTimeout is create with the container's own stop timeout set
// (Spec has no such field: the supervisor always names its grace); 0 leaves
// the engine's default.
func createWithStopTimeout(t *testing.T, c *Client, s Spec, stop time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), slowEngine*30*time.Second)
	defer cancel()
	var id string
	if stop == 0 {
		var err error
		if id, err = c.Create(ctx, s); err != nil {
			t.Fatalf("create: %v", err)
		}
	} else {
		cfg, hc, err := s.build(c.sockets)
		if err != nil {
			t.Fatalf("build spec: %v", err)
		}
		secs := int(stop.Seconds())
		cfg.StopTimeout = &secs
		resp, err := c.cli.ContainerCreate(ctx, cfg, hc, nil, nil, s.Name)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		id = resp.ID
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), slowEngine*30*time.Second)
		defer cancel()
		if err := c.Remove(ctx, id); err != nil {
			t.Errorf("cleanup remove %s: %v", id, err)
		}
	})
	return id
}

// probeTest is how a probe test begins: a client, the probe image, and a
// context bounded by timeout that ends with the test.
func probeTest(t *testing.T, timeout time.Duration) (*Client, string, context.Context) {
	t.Helper()
	c := newTestClient(t)
	img := probeImage(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), slowEngine*timeout)
	t.Cleanup(cancel)
	return c, img, ctx
}

// startContainer creates a container from s (removed when the test ends) and starts it.
func startContainer(ctx context.Context, t *testing.T, c *Client, s Spec) (string, <-chan WaitResult) {
	t.Helper()
	id := create(t, c, s)
	waitC, err := c.Start(ctx, id)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return id, waitC
}

// logs returns everything the container wrote so far, without following.
func logs(ctx context.Context, t *testing.T, c *Client, id string) (string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	if err := c.Logs(ctx, id, false, &stdout, &stderr); err != nil {
		t.Fatalf("logs: %v", err)
	}
	return stdout.String(), stderr.String()
}

// run creates and starts a container and waits for it to exit, returning its
// status and everything it wrote.
func run(t *testing.T, c *Client, s Spec) (ExitStatus, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), slowEngine*30*time.Second)
	defer cancel()
	id, waitC := startContainer(ctx, t, c, s)
	res := <-waitC
	if res.Err != nil {
		t.Fatalf("wait: %v", res.Err)
	}
	stdout, stderr := logs(ctx, t, c, id)
	return res.Status, stdout, stderr
}

// lineWatcher is a Writer that closes seen once its output contains want.
type lineWatcher struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	done bool
}

func newLineWatcher(want string) *lineWatcher {
	return &lineWatcher{want: want, seen: make(chan struct{})}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

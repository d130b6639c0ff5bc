package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// build compiles a package statically, as the FROM-scratch image needs it.
func build(t *testing.T, out, pkg string) {
	t.Helper()
	// go test puts its own GOROOT/bin first on PATH, so this is the toolchain
	// that built the test.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go tool: %v", err)
	}
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
}

// The binary turns SIGTERM into a stopped result and exit 143.
func TestWorkerBinaryStopsOnSIGTERM(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	build(t, filepath.Join(bin, "trakkar-worker"), "github.com/trakkar/trakkar-agent/cmd/trakkar-worker")
	build(t, filepath.Join(bin, "claude"), "github.com/trakkar/trakkar-agent/internal/fakeagent/claude")
	in, out, ws, home := filepath.Join(root, "in"), filepath.Join(root, "out"), filepath.Join(root, "ws"), filepath.Join(root, "home")
	for _, d := range []string{in, out, ws, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	job, _ := json.Marshal(workerproto.Job{Provider: "claude_code", Prompt: "fake:scenario=hang",
		SessionID: "3f1c2a9e-5b7d-4c11-9a0e-2b8f6d4e7a10"})
	if err := os.WriteFile(filepath.Join(in, workerproto.JobFile), job, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "trakkar-worker"))
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + home, "ANTHROPIC_API_KEY=sk-test", "IS_SANDBOX=1",
		"TRAKKAR_IN_DIR=" + in, "TRAKKAR_OUT_DIR=" + out, "TRAKKAR_WORKSPACE=" + ws}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	sc := bufio.NewScanner(stdout)
	sawMessage := make(chan struct{})
	go func() {
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"type":"message"`) {
				close(sawMessage)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-sawMessage:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent never started")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != workerproto.ExitStopped {
			t.Errorf("worker exit: %v, want %d", err, workerproto.ExitStopped)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not exit after SIGTERM")
	}
	b, err := os.ReadFile(filepath.Join(out, workerproto.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	var res workerproto.Result
	if err := json.Unmarshal(b, &res); err != nil || res.Outcome != workerproto.OutcomeStopped {
		t.Errorf("result %s (%v), want stopped", b, err)
	}
}

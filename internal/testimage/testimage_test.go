package testimage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
)

const testLabel = "in.trakkar.agent.test"

// standins builds the stand-in program once and places it twice, as the
// worker and as claude (a copy, not a second link).
func standins(t *testing.T) (worker, claude string) {
	t.Helper()
	dir := t.TempDir()
	worker, claude = filepath.Join(dir, "trakkar-worker"), filepath.Join(dir, "claude")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", worker, "./testdata/standin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stand-in: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(worker)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(claude, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return worker, claude
}

// runImage runs the image hardened like a task container and returns its stdout.
func runImage(t *testing.T, c *docker.Client, s docker.Spec) (docker.ExitStatus, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.User = "1000:1000"
	s.Network = "none"
	s.Labels = map[string]string{testLabel: "1"}
	id, err := c.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Remove(ctx, id); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	})
	waitC, err := c.Start(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	res := <-waitC
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var out, errOut strings.Builder
	if err := c.Logs(ctx, id, false, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if errOut.Len() > 0 {
		t.Logf("stderr: %s", errOut.String())
	}
	return res.Status, out.String()
}

func TestBuildWithStandinsAndReuse(t *testing.T) {
	c := Docker(t)
	worker, claude := standins(t)
	ref := "trakkar-agent/worker-test:standin-" + uniq()
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", ref).Run() })
	env := []string{"WORKER_BIN=" + worker, "CLAUDE_BIN=" + claude}
	if _, out, err := build(ref, env); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("first build: %s", tail(out, 3))
	}

	st, out := runImage(t, c, docker.Spec{Image: ref})
	if st.Code != 0 {
		t.Fatalf("stand-in worker exited %d: %s", st.Code, out)
	}
	for _, want := range []string{
		"uid=1000 gid=1000", "home=/home/agent", "path=/usr/local/bin:/bin", "workdir=/workspace",
		"claude=standin-claude", "user=agent", "group=agent", "tmp=ok",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("image output lacks %q:\n%s", want, out)
		}
	}

	// A shell entrypoint, as a verify step would use: busybox is the shell.
	st, out = runImage(t, c, docker.Spec{Image: ref, Entrypoint: []string{"/bin/sh", "-c"},
		Cmd: []string{"touch /x 2>/dev/null && echo root-writable; ls /home/agent >/dev/null && echo home-ok; exit 7"}})
	if st.Code != 7 || strings.Contains(out, "root-writable") || !strings.Contains(out, "home-ok") {
		t.Fatalf("shell entrypoint: exit %d, output %q", st.Code, out)
	}

	// Same inputs: reused, not rebuilt.
	_, out2, err := build(ref, env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out2, "reusing") || strings.Contains(out2, "docker build") || strings.Contains(out2, "Step 1/") {
		t.Fatalf("second build did not reuse the image:\n%s", out2)
	}
}

func TestScriptFailsClearlyWithoutSources(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the script in a tree that lacks the worker and the fake claude.
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "images", "test"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{buildScript, "images/test/Dockerfile"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runScript := func() (string, error) {
		cmd := exec.Command("bash", filepath.Join(tree, buildScript))
		cmd.Env = append(os.Environ(), "IMAGE=trakkar-agent/worker-test:never-built")
		b, err := cmd.CombinedOutput()
		return string(b), err
	}

	out, err := runScript()
	if err == nil || !strings.Contains(out, "cmd/trakkar-worker does not exist yet") {
		t.Fatalf("without the worker: err=%v output=%q", err, out)
	}
	if err := os.MkdirAll(filepath.Join(tree, "cmd", "trakkar-worker"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = runScript()
	if err == nil || !strings.Contains(out, "internal/fakeagent/claude does not exist yet") {
		t.Fatalf("without the fake claude: err=%v output=%q", err, out)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("failure is not one line: %q", out)
	}
}

func TestEnsure(t *testing.T) {
	ref := Ensure(t)
	if again := Ensure(t); again != ref {
		t.Fatalf("Ensure returned %q then %q", ref, again)
	}
	c := Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := c.ImageExists(ctx, ref)
	if err != nil || !ok {
		t.Fatalf("image %s exists=%v err=%v", ref, ok, err)
	}
	// The real image holds the real worker and fake claude where the supervisor expects them.
	st, out := runImage(t, c, docker.Spec{Image: ref, Entrypoint: []string{"/bin/sh", "-c"},
		Cmd: []string{"test -x /usr/local/bin/trakkar-worker && command -v claude && id -un && echo $HOME"}})
	if st.Code != 0 || out != "/usr/local/bin/claude\nagent\n/home/agent\n" {
		t.Fatalf("worker image: exit %d, output %q", st.Code, out)
	}
}

func uniq() string { return RunID() }

package images_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/testimage"
)

// freePort is a loopback TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// composeUp brings the stack of docker-compose.yml + docker-compose.local.yml
// up with docker-compose v1, as documented (from the target repository, the
// compose files named by path), on the already built supervisor image: the
// dev-server answers and the supervisor starts and polls it. Then `stop`
// drains the supervisor, which must exit 0.
func composeUp(t *testing.T, supImage, workerImage, debian, golang string) {
	t.Helper()
	root := repoRoot(t)
	id := testimage.RunID()
	project := "trakkar-images-test-" + id
	repo := filepath.Join(t.TempDir(), "web")
	for _, args := range [][]string{{"init", "-q", repo}, {"-C", repo, "remote", "add", "origin", "https://github.com/acme/web.git"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dockerSocket(), &st); err != nil {
		t.Fatalf("stat the docker socket: %v", err)
	}
	port := freePort(t)
	env := []string{
		"PWD=" + repo, "TRAKKAR_SUPERVISOR_IMAGE=" + supImage, "TRAKKAR_IMAGE=" + workerImage,
		"DEBIAN_IMAGE=" + debian, "GOLANG_IMAGE=" + golang, fmt.Sprintf("TRAKKAR_DEV_PORT=%d", port),
		fmt.Sprintf("TRAKKAR_UID=%d", os.Getuid()), fmt.Sprintf("TRAKKAR_GID=%d", os.Getgid()),
		fmt.Sprintf("DOCKER_GID=%d", st.Gid), "TRAKKAR_RUNNER_ID=rnr_compose_" + id,
		"GH_TOKEN=" + ghToken, "ANTHROPIC_API_KEY=" + modelKey, "TRAKKAR_LOG_FORMAT=console",
	}
	compose := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		argv := append([]string{"-f", filepath.Join(root, "docker-compose.yml"), "-f", filepath.Join(root, "docker-compose.local.yml"),
			"-p", project}, args...)
		cmd := exec.CommandContext(ctx, "docker-compose", argv...)
		cmd.Dir = repo
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := compose(2*time.Minute, "down", "--remove-orphans", "--timeout", "30"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})
	if out, err := compose(5*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	} else if strings.Contains(out, "Pulling") {
		t.Errorf("docker-compose up pulled an image:\n%s", out)
	}

	ids, err := compose(time.Minute, "ps", "-q", "trakkar-agent")
	cid := strings.TrimSpace(ids)
	if err != nil || cid == "" {
		t.Fatalf("docker-compose ps: %v %q", err, ids)
	}
	// The container's logs are read with docker itself: each docker-compose
	// (v1, Python) call costs half a CPU-second, and this polls every second.
	logsOf := func() string {
		out, _ := exec.Command("docker", "logs", cid).CombinedOutput()
		return string(out)
	}
	// The supervisor reads the agent's settings from dev-server, then polls.
	// The bound only fails a supervisor that never starts; slack for a
	// loaded shared engine.
	deadline := time.Now().Add(4 * time.Minute)
	var logs string
	for {
		logs = logsOf()
		if strings.Contains(logs, "started") && strings.Contains(logs, workerImage) {
			break
		}
		if time.Now().After(deadline) {
			ps, _ := compose(time.Minute, "ps")
			t.Fatalf("the supervisor did not start polling dev-server within 4 min:\n%s\n%s", ps, tail(logs, 40))
		}
		time.Sleep(time.Second)
	}
	if out, err := compose(2*time.Minute, "stop", "trakkar-agent"); err != nil {
		t.Fatalf("docker-compose stop: %v\n%s", err, out)
	}
	code := strings.TrimSpace(run(t, time.Minute, nil, "docker", "inspect", "-f", "{{.State.ExitCode}}", cid))
	logs = logsOf()
	if code != "0" {
		t.Fatalf("the supervisor exited %s after stop, want 0 (drained):\n%s", code, tail(logs, 40))
	}
	t.Logf("compose stack up against dev-server, supervisor drained and exited 0:\n%s", tail(logs, 6))
}

package images_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

const (
	ghToken    = "ghp_imagesTestTokenValue123"
	modelKey   = "sk-ant-api03-imagesTestDummyKey" // the fake CLI needs one, never uses it
	agentToken = "trk_agent_images_secret"
)

// dockerSocket is the engine's unix socket on this host, to mount into the
// supervisor container as compose does.
func dockerSocket() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return "/var/run/docker.sock"
}

// runTask runs the supervisor image with --once, as compose runs it (host
// socket, the repository at the same path), against a stand-in Trakkar and a
// fake GitHub on the host's loopback, and checks that the one task it claims
// runs in the worker image and ends in a pull request.
func runTask(t *testing.T, supImage, workerImage string) {
	t.Helper()
	dc := testimage.Docker(t)
	id := testimage.RunID()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))

	gh := fakegithub.New(t, ghToken)
	cloneURL := gh.AddRepo(t, "acme", "web", map[string]string{"README.md": "# web\n"})
	repo := filepath.Join(t.TempDir(), "web")
	if out, err := exec.Command("git", "clone", "-q", cloneURL, repo).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := supervisor.PruneCaches(ctx, dc, repo); err != nil {
			t.Logf("prune caches: %v", err)
		}
	})

	stand := standin.New(standin.Options{Token: agentToken, LeaseSeconds: 10, Logger: log.Named("standin")})
	srv := httptest.NewServer(stand.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(stand.Close) // runs first: releases open long polls
	const key = "IMG-1"
	if _, _, err := stand.CreateTask(standin.NewTask{Key: key, Title: "Through the production images",
		Description: "Add a line to the README.\n\nfake:scenario=edit\n"}); err != nil {
		t.Fatal(err)
	}

	runner := "rnr_images_" + id
	name := "trakkar-agent-images-test-" + id
	t.Cleanup(func() {
		// Only when the run did not end by itself (timeout): --rm removes it otherwise.
		_ = exec.Command("docker", "rm", "-f", name).Run()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cs, err := dc.List(ctx, map[string]string{supervisor.LabelRunner: runner})
		if err != nil {
			t.Errorf("list task containers: %v", err)
			return
		}
		for _, c := range cs {
			if err := dc.Remove(ctx, c.ID); err != nil {
				t.Errorf("remove task container %s: %v", c.ID, err)
			}
		}
	})
	sock := dockerSocket()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "run", "--rm", "--name", name,
		"--label", "in.trakkar.agent.test=1",
		// Host network: the stand-ins listen on the host's loopback.
		"--network", "host",
		"-v", sock+":/var/run/docker.sock", "-v", repo+":"+repo, "-w", repo,
		"-e", "TRAKKAR_TOKEN="+agentToken, "-e", "TRAKKAR_API_URL="+srv.URL,
		"-e", "GH_TOKEN="+ghToken, "-e", "ANTHROPIC_API_KEY="+modelKey,
		"-e", "TRAKKAR_RUNNER_ID="+runner, "-e", "TRAKKAR_LOG_FORMAT=console",
		supImage,
		"--once", "--repo", repo, "--image", workerImage, "--interval", "1", "--poll-wait", "1",
		"--github-api-url", gh.URL())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("supervisor image --once: %v\n%s", err, tail(string(out), 80))
	}

	tv, ok := stand.TaskByKey(key)
	if !ok || len(tv.Runs) == 0 {
		t.Fatalf("the task was never run:\n%s", tail(string(out), 80))
	}
	rv := tv.Runs[len(tv.Runs)-1]
	if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("completion %+v, want %s:\n%s", rv.Completion, trakkar.OutcomeSucceeded, tail(string(out), 80))
	}
	prs := gh.PRs("acme", "web")
	if len(prs) != 1 {
		t.Fatalf("%d pull requests, want 1:\n%s", len(prs), tail(string(out), 80))
	}
	t.Logf("%s: %s, pull request %q from %s", key, rv.Completion.Outcome, prs[0].Title, prs[0].Head)
	for _, secret := range []string{ghToken, modelKey, agentToken} {
		if strings.Contains(string(out), secret) {
			t.Errorf("the supervisor's output leaks a secret")
		}
	}
}

package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trakkar-agent-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "trakkar-agent")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func gitInit(t *testing.T, origin string) string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	run("init", "-q")
	if origin != "" {
		run("remote", "add", "origin", origin)
	}
	return dir
}

// Every bad input gets one clear line on stderr and exit status 2.
func TestBadInput(t *testing.T) {
	plain := t.TempDir()
	noOrigin := gitInit(t, "")
	withOrigin := gitInit(t, "https://github.com/acme/web.git")
	// A Trakkar that refuses every token, and one that is not Trakkar at all.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"invalid token"}}`))
	}))
	defer refusing.Close()
	notTrakkar := httptest.NewServer(http.NotFoundHandler())
	defer notTrakkar.Close()
	dryRun := []string{"--dry-run", "--once", "--provider", "claude_code"}
	withKeys := []string{"TRAKKAR_TOKEN=t", "GH_TOKEN=g", "ANTHROPIC_API_KEY=k"}
	cases := []struct {
		name string
		dir  string
		args []string
		env  []string
		want string
	}{
		{"too many cpus for the engine", withOrigin, []string{"--provider", "claude_code", "--cpus", "1000"}, withKeys, "--cpus 1000 is more than the Docker engine's"},
		{"more memory than the engine", withOrigin, []string{"--provider", "claude_code", "--memory-mb", "99999999"}, withKeys, "--memory-mb 99999999 is more than the Docker engine's"},
		{"memory below the floor", withOrigin, []string{"--memory-mb", "1"}, []string{"TRAKKAR_TOKEN=t"}, "--memory-mb must be at least 128 (got 1)"},
		{"more free disk than the disk", withOrigin, append([]string{"--min-free-mb", "99999999999", "--api-url", "http://127.0.0.1:1"}, dryRun...),
			[]string{"TRAKKAR_TOKEN=t"}, "--min-free-mb 99999999999 is more than the"},
		{"absurd concurrency", withOrigin, []string{"--max-concurrency", "100000"}, []string{"TRAKKAR_TOKEN=t"}, "--max-concurrency must be at most 64 (got 100000)"},
		{"absurd setups at once", withOrigin, []string{"--max-starting", "1000"}, []string{"TRAKKAR_TOKEN=t"}, "--max-starting must be at most 64 (got 1000)"},
		{"zero max files", withOrigin, []string{"--max-files", "0"}, []string{"TRAKKAR_TOKEN=t"}, "--max-files must not be 0"},
		{"zero timeout", withOrigin, []string{"--timeout", "0"}, []string{"TRAKKAR_TOKEN=t"}, "--timeout must not be 0"},
		{"zero interval", withOrigin, []string{"--interval", "0"}, []string{"TRAKKAR_TOKEN=t"}, "--interval must not be 0"},
		{"zero cpus", withOrigin, []string{"--cpus", "0"}, []string{"TRAKKAR_TOKEN=t"}, "--cpus must not be 0"},
		{"zero pids limit", withOrigin, []string{"--pids-limit", "0"}, []string{"TRAKKAR_TOKEN=t"}, "--pids-limit must not be 0"},
		{"overflowing memory", withOrigin, []string{"--memory-mb", "9000000000000000"}, []string{"TRAKKAR_TOKEN=t"}, "--memory-mb 9000000000000000 is out of range"},
		{"cpus not a number", withOrigin, []string{"--cpus", "NaN"}, []string{"TRAKKAR_TOKEN=t"}, "--cpus NaN is out of range"},
		{"overflowing interval", withOrigin, []string{"--interval", "99999999999999"}, []string{"TRAKKAR_TOKEN=t"}, "--interval 99999999999999 is out of range"},
		{"malformed image", withOrigin, []string{"--image", "BAD IMAGE"}, []string{"TRAKKAR_TOKEN=t"}, `--image "BAD IMAGE" is not a valid image reference`},
		{"token refused", withOrigin, append([]string{"--api-url", refusing.URL}, dryRun...), []string{"TRAKKAR_TOKEN=t"}, "trakkar rejected the token (401)"},
		{"api url not Trakkar", withOrigin, append([]string{"--api-url", notTrakkar.URL}, dryRun...), []string{"TRAKKAR_TOKEN=t"}, "refused the runner"},
		{"missing token", withOrigin, nil, nil, "missing Trakkar token"},
		{"unknown provider", withOrigin, []string{"--provider", "codex"}, []string{"TRAKKAR_TOKEN=t"}, `unknown provider "codex"`},
		{"negative interval", withOrigin, []string{"--interval", "-1"}, []string{"TRAKKAR_TOKEN=t"}, "--interval must not be negative"},
		{"negative concurrency", withOrigin, []string{"--max-concurrency=-2"}, []string{"TRAKKAR_TOKEN=t"}, "--max-concurrency must not be negative"},
		{"negative timeout", withOrigin, []string{"--timeout=-5"}, []string{"TRAKKAR_TOKEN=t"}, "--timeout must not be negative"},
		{"negative workspace cap", withOrigin, []string{"--max-workspace-mb=-1"}, []string{"TRAKKAR_TOKEN=t"}, "--max-workspace-mb must not be negative"},
		{"negative workspace cap from env", withOrigin, nil, []string{"TRAKKAR_TOKEN=t", "TRAKKAR_MAX_WORKSPACE_MB=-3"}, "--max-workspace-mb must not be negative"},
		{"unknown publish", withOrigin, []string{"--publish", "mail"}, []string{"TRAKKAR_TOKEN=t"}, `unknown --publish "mail"`},
		{"root container user", withOrigin, []string{"--container-user", "0:0"}, []string{"TRAKKAR_TOKEN=t"}, "non-root uid:gid"},
		{"unknown log format", withOrigin, []string{"--log-format", "xml"}, []string{"TRAKKAR_TOKEN=t"}, `unknown --log-format "xml"`},
		{"unknown flag", withOrigin, []string{"--frobnicate"}, []string{"TRAKKAR_TOKEN=t"}, "flag provided but not defined"},
		{"unknown doctor flag", withOrigin, []string{"doctor", "--frobnicate"}, nil, "flag provided but not defined"},
		{"unknown prune flag", withOrigin, []string{"prune", "--frobnicate"}, nil, "flag provided but not defined"},
		{"stray doctor argument", withOrigin, []string{"doctor", "go"}, nil, `unexpected argument "go"`},
		{"stray argument", withOrigin, []string{"go"}, []string{"TRAKKAR_TOKEN=t"}, `unexpected argument "go"`},
		{"not a git repository", plain, nil, []string{"TRAKKAR_TOKEN=t"}, "is not inside a git repository"},
		{"inside a task worktree", withOrigin, []string{"--repo", filepath.Join(withOrigin, ".trakkar-worktrees", "web-1")},
			[]string{"TRAKKAR_TOKEN=t"}, "inside a task worktree folder"},
		{"no origin", noOrigin, nil, []string{"TRAKKAR_TOKEN=t"}, `no "origin" remote`},
		{"no github token", withOrigin, []string{"--provider", "claude_code"}, []string{"TRAKKAR_TOKEN=t", "ANTHROPIC_API_KEY=k"}, "needs a GitHub token"},
		{"missing model credential", withOrigin, []string{"--provider", "claude_code"}, []string{"TRAKKAR_TOKEN=t", "GH_TOKEN=g"}, "missing model credential for claude_code"},
		{"missing cursor credential", withOrigin, []string{"--provider", "cursor"}, []string{"TRAKKAR_TOKEN=t", "GH_TOKEN=g", "ANTHROPIC_API_KEY=k"}, "CURSOR_API_KEY"},
		{"missing sandbox runtime", withOrigin, []string{"--provider", "claude_code", "--runtime", "trakkar-no-such-runtime"},
			[]string{"TRAKKAR_TOKEN=t", "GH_TOKEN=g", "ANTHROPIC_API_KEY=k"}, `runtime "trakkar-no-such-runtime" is not registered`},
		{"unknown network policy", withOrigin, []string{"--network", "bridge"}, []string{"TRAKKAR_TOKEN=t"}, `unknown --network "bridge"`},
		{"bad allowlist entry", withOrigin, []string{"--network", "allowlist", "--allow-domain", "http://x.com"}, []string{"TRAKKAR_TOKEN=t"}, "--allow-domain"},
		// Checked before Trakkar is asked anything: none answers at this address.
		{"share outside the repository", withOrigin, []string{"--share", "../x", "--once", "--dry-run", "--api-url", "http://127.0.0.1:1"},
			[]string{"TRAKKAR_TOKEN=t"}, `share path "../x" must be relative`},
		{"every bad value on one line", withOrigin, []string{"--interval=-1", "--timeout=-5"}, []string{"TRAKKAR_TOKEN=t"},
			"--interval must not be negative (got -1); --timeout must not be negative (got -5)"},
		{"long poll too long", withOrigin, []string{"--poll-wait", "31"}, []string{"TRAKKAR_TOKEN=t"}, "--poll-wait must be at most 30 (got 31)"},
		{"pinned key off the allowlist", withOrigin, []string{"--pin-model-key"}, []string{"TRAKKAR_TOKEN=t"}, "--pin-model-key needs --network allowlist"},
		{"docker unreachable", withOrigin, []string{"--provider", "claude_code"},
			[]string{"TRAKKAR_TOKEN=t", "GH_TOKEN=g", "ANTHROPIC_API_KEY=k", "DOCKER_HOST=unix:///nonexistent/docker.sock"}, "DOCKER_HOST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := runBinary(t, c.dir, c.args, c.env)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Fatalf("stderr %q does not contain %q", stderr, c.want)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Fatalf("want one line on stderr, got %d:\n%s", lines, stderr)
			}
			for _, secret := range []string{"GH_TOKEN=g"} {
				if strings.Contains(stderr, secret) {
					t.Fatalf("stderr leaks %q", secret)
				}
			}
		})
	}
}

func TestHelpListsOptions(t *testing.T) {
	cmd := exec.Command(binary, "--help")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, f := range []string{"--token", "--api-url", "--provider", "--interval", "--timeout", "--max-concurrency", "--max-starting",
		"--once", "--dry-run", "--repo", "--image", "--publish", "--max-workspace-mb", "TRAKKAR_MAX_WORKSPACE_MB", "dev-server", "doctor"} {
		if !bytes.Contains(out, []byte(f)) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}

func runBinary(t *testing.T, dir string, args, env []string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	// A clean environment: nothing from the developer's shell leaks into the case.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("run: %v", err)
	return -1, ""
}

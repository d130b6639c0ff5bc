package main

import (
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
)

// runner is the real binary running in the background.
type runner struct {
	cmd  *exec.Cmd
	out  *testimage.SyncBuffer
	done chan struct{}
}

func startRunner(t *testing.T, dir string, args, env []string) *runner {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	r := &runner{cmd: cmd, out: &testimage.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("runner pid %d output:\n%s", cmd.Process.Pid, r.out.String())
		}
	})
	return r
}

// waitOutput waits until the runner printed want, failing if it exits first.
func (r *runner) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(r.out.String(), want) {
		select {
		case <-r.done:
			t.Fatalf("runner exited (%v) before printing %q:\n%s", r.cmd.ProcessState, want, r.out.String())
		case <-deadline:
			t.Fatalf("runner did not print %q within %s:\n%s", want, timeout, r.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exitWithin waits for the runner to exit and returns its status.
func (r *runner) exitWithin(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("runner still running %s later:\n%s", timeout, r.out.String())
		return -1
	}
}

func standIn(t *testing.T) string {
	t.Helper()
	st := standin.New(standin.Options{Token: "trk_agent_locktest"})
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(st.Close)
	return srv.URL
}

// Only one runner process owns a runner id at a time: a second one on the same
// repository (or with the same TRAKKAR_RUNNER_ID elsewhere) exits 2 with one
// line, and the lock dies with its holder, so a SIGKILLed runner restarts.
func TestOneRunnerPerRunnerID(t *testing.T) {
	url := standIn(t)
	base := []string{"--dry-run", "--provider", "claude_code", "--interval", "1", "--poll-wait", "1"}
	// Console logs: the test waits for their tab-separated "started".
	env := []string{"TRAKKAR_TOKEN=trk_agent_locktest", "TRAKKAR_API_URL=" + url, "TRAKKAR_LOG_FORMAT=console"}
	id := "rnr_locktest_" + testimage.RunID()
	cases := []struct {
		name             string
		second           func(first string) string // the second runner's repository
		firstEnv         []string
		secondEnv        []string
		want             string // "" when the second must start
		restartAfterKill bool
	}{
		{name: "same repository", second: func(first string) string { return first },
			want: "is already working this repository; stop it first", restartAfterKill: true},
		{name: "same TRAKKAR_RUNNER_ID in another clone", second: func(string) string { return gitInit(t, "https://github.com/acme/web.git") },
			firstEnv: []string{"TRAKKAR_RUNNER_ID=" + id}, secondEnv: []string{"TRAKKAR_RUNNER_ID=" + id},
			want: `already runs as TRAKKAR_RUNNER_ID "` + id + `" on this host`},
		{name: "own TRAKKAR_RUNNER_ID on the same repository", second: func(first string) string { return first },
			firstEnv: []string{"TRAKKAR_RUNNER_ID=" + id + "_a"}, secondEnv: []string{"TRAKKAR_RUNNER_ID=" + id + "_b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := gitInit(t, "https://github.com/acme/web.git")
			first := startRunner(t, repo, base, append(append([]string{}, env...), c.firstEnv...))
			first.waitOutput(t, "\tstarted\t", 20*time.Second)

			secondEnv := append(append([]string{}, env...), c.secondEnv...)
			if c.want == "" {
				second := startRunner(t, c.second(repo), base, secondEnv)
				second.waitOutput(t, "\tstarted\t", 20*time.Second)
				return
			}
			code, stderr := runBinary(t, c.second(repo), append(base, "--once"), secondEnv)
			pid := "(pid " + strconv.Itoa(first.cmd.Process.Pid) + ")"
			if code != 2 || !strings.Contains(stderr, "another trakkar-agent "+pid) || !strings.Contains(stderr, c.want) {
				t.Fatalf("second runner: exit %d, stderr:\n%s\nwant exit 2 naming %s and %q", code, stderr, pid, c.want)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Fatalf("want one line on stderr, got %d:\n%s", lines, stderr)
			}
			select {
			case <-first.done:
				t.Fatalf("the first runner exited:\n%s", first.out.String())
			default:
			}
			if !c.restartAfterKill {
				return
			}
			if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-first.done
			third := startRunner(t, repo, base, env)
			third.waitOutput(t, "\tstarted\t", 20*time.Second)
			if err := third.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Fatal(err)
			}
			if code := third.exitWithin(t, 10*time.Second); code != 0 {
				t.Fatalf("restarted runner exited %d after SIGTERM:\n%s", code, third.out.String())
			}
		})
	}
}

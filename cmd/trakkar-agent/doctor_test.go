package main

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
)

// doctorChecks are the lines every doctor run prints, in order.
var doctorChecks = []string{"Repository", "Options", "Docker", "Limits", "Trakkar", "Provider", "Worker image",
	"Model credential", "Runtime", "GitHub", "Free disk", "Git", "Worktree folder", "Runner lock"}

// doctorEnv is a machine where everything is in order: the stand-in for
// Trakkar, the fake GitHub holding the repository, the offline test image.
type doctorEnv struct {
	repo, image, trakkarURL, githubURL string
	gh                                 *fakegithub.Server
}

const (
	doctorToken   = "trk_agent_doctor_secret"
	doctorGHToken = "ghp_doctor_secret"
	doctorModel   = "sk-ant-doctor-secret"
)

func newDoctorEnv(t *testing.T) doctorEnv {
	t.Helper()
	image := testimage.Ensure(t)
	st := standin.New(standin.Options{Token: doctorToken})
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(st.Close)
	gh := fakegithub.New(t, doctorGHToken)
	origin := gh.AddRepo(t, "acme", "web", map[string]string{"README.md": "hi\n"})
	return doctorEnv{repo: gitInit(t, origin), image: image, trakkarURL: srv.URL, githubURL: gh.URL(), gh: gh}
}

func (e doctorEnv) args(extra ...string) []string {
	return append([]string{"doctor", "--provider", "claude_code", "--image", e.image, "--github-api-url", e.githubURL,
		"--min-free-mb", "1"}, extra...)
}

func (e doctorEnv) env(extra ...string) []string {
	return append([]string{"TRAKKAR_TOKEN=" + doctorToken, "TRAKKAR_API_URL=" + e.trakkarURL,
		"GH_TOKEN=" + doctorGHToken, "ANTHROPIC_API_KEY=" + doctorModel}, extra...)
}

// runDoctor runs the binary and returns its exit status and all its output.
func runDoctor(t *testing.T, dir string, args, env []string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("run doctor: %v", err)
	return -1, ""
}

// checkLine returns the line of check name ("✔ name: …" or "✖ name: …").
func checkLine(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "✔ "+name+": ") || strings.HasPrefix(line, "✖ "+name+": ") {
			return line
		}
	}
	t.Fatalf("no %q line in:\n%s", name, out)
	return ""
}

// On a machine where everything is in order every check passes, and no
// secret is printed.
func TestDoctorAllPass(t *testing.T) {
	e := newDoctorEnv(t)
	code, out := runDoctor(t, e.repo, e.args(), e.env())
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, name := range doctorChecks {
		if line := checkLine(t, out, name); !strings.HasPrefix(line, "✔") {
			t.Errorf("check %s failed: %s", name, line)
		}
	}
	for _, want := range []string{"API 1.", "entrypoint /usr/local/bin/trakkar-worker, claude at /usr/local/bin/claude",
		"ANTHROPIC_API_KEY set", "token accepted", "push access", "git 2."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{doctorToken, doctorGHToken, doctorModel} {
		if strings.Contains(out, secret) {
			t.Errorf("output prints a secret %q:\n%s", secret, out)
		}
	}
}

// Each broken part gives its own ✖ line with the fix and exit status 1; the
// other checks still run.
func TestDoctorFailures(t *testing.T) {
	e := newDoctorEnv(t)
	missing := "trakkar-agent/no-such-worker-" + testimage.RunID() + ":x"
	cases := []struct {
		name     string
		args     []string
		env      []string
		readOnly bool
		check    string
		want     []string // in the ✖ line and its fix
	}{
		{name: "bad token", env: e.env("TRAKKAR_TOKEN=trk_agent_wrong"), check: "Trakkar",
			want: []string{"the token was refused (401)", "fix: check --token / TRAKKAR_TOKEN"}},
		{name: "missing image", args: e.args("--image", missing), env: e.env(), check: "Worker image",
			want: []string{missing + " is not on this Docker engine", "fix: build it with bash images/build.sh"}},
		{name: "image without the agent CLI", args: e.args("--image", derivedImage(t, e.image, "USER 0\nRUN rm /usr/local/bin/claude\nUSER 1000:1000")),
			env: e.env(), check: "Worker image", want: []string{"has no claude on its PATH (/usr/local/bin:/bin)"}},
		{name: "image that is not a worker", args: e.args("--image", derivedImage(t, e.image, `ENTRYPOINT ["/bin/sh"]`)),
			env: e.env(), check: "Worker image", want: []string{`has entrypoint ["/bin/sh"], not trakkar-worker`}},
		{name: "no model credential", env: []string{"TRAKKAR_TOKEN=" + doctorToken, "TRAKKAR_API_URL=" + e.trakkarURL, "GH_TOKEN=" + doctorGHToken},
			check: "Model credential", want: []string{"missing model credential for claude_code", "fix: export"}},
		{name: "no push access", env: e.env(), readOnly: true, check: "GitHub",
			want: []string{"the token has no push access to acme/web", "fix: give the token's account write access"}},
		{name: "wrong GitHub token", env: e.env("GH_TOKEN=ghp_wrong"), check: "GitHub",
			want: []string{"the token cannot read acme/web (GitHub answered 401)"}},
		{name: "missing runtime", args: e.args("--runtime", "trakkar-no-such-runtime"), env: e.env(), check: "Runtime",
			want: []string{"trakkar-no-such-runtime is not registered"}},
		{name: "bad option", args: e.args("--max-files", "0"), env: e.env(), check: "Options",
			want: []string{"--max-files must not be 0"}},
		{name: "more free disk than the disk", args: e.args("--min-free-mb", "99999999999"), env: e.env(), check: "Limits",
			want: []string{"--min-free-mb 99999999999 is more than the"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.gh.SetReadOnly(c.readOnly)
			defer e.gh.SetReadOnly(false)
			args := c.args
			if args == nil {
				args = e.args()
			}
			code, out := runDoctor(t, e.repo, args, c.env)
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			line := checkLine(t, out, c.check)
			if !strings.HasPrefix(line, "✖") {
				t.Fatalf("check %s passed: %s\n%s", c.check, line, out)
			}
			block := out[strings.Index(out, line):]
			for _, w := range c.want {
				if !strings.Contains(block, w) {
					t.Errorf("%s: %q not in\n%s", c.check, w, block)
				}
			}
			if !strings.Contains(out, "Runner lock: ") || !strings.Contains(out, "checks failed") {
				t.Errorf("the checklist stopped early:\n%s", out)
			}
		})
	}
}

// A running runner holds the repository: doctor names it and fails.
func TestDoctorSeesTheRunnerLock(t *testing.T) {
	e := newDoctorEnv(t)
	r := startRunner(t, e.repo, []string{"--dry-run", "--provider", "claude_code", "--interval", "1", "--poll-wait", "1"},
		e.env("TRAKKAR_LOG_FORMAT=console"))
	r.waitOutput(t, "\tstarted\t", 20*time.Second)
	code, out := runDoctor(t, e.repo, e.args(), e.env())
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	line := checkLine(t, out, "Runner lock")
	want := "another trakkar-agent (pid " + strconv.Itoa(r.cmd.Process.Pid) + ") is working this repository"
	if !strings.HasPrefix(line, "✖") || !strings.Contains(line, want) {
		t.Fatalf("runner lock line %q, want ✖ with %q", line, want)
	}
}

// derivedImage builds base plus the Dockerfile lines, tagged for this run
// only, and removes it when the test ends.
func derivedImage(t *testing.T, base, lines string) string {
	t.Helper()
	tag := "trakkar-agent/doctor-test:" + testimage.RunID() + "-" + strconv.Itoa(derivedCount)
	derivedCount++
	cmd := exec.Command("docker", "build", "-q", "-t", tag, "-")
	cmd.Stdin = strings.NewReader("FROM " + base + "\n" + lines + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", tag, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

var derivedCount int

package images_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// composeConfig runs `config` of a compose implementation (argv prefix cli)
// from dir, as a user does from the repository the agent works on, and
// returns the resolved configuration.
func composeConfig(t *testing.T, cli []string, dir string, env []string, args ...string) string {
	t.Helper()
	argv := append(append(append([]string{}, cli[1:]...), args...), "config")
	cmd := exec.Command(cli[0], argv...)
	cmd.Dir = dir
	// Only what compose needs: the developer's own TRAKKAR_* or DEBIAN_IMAGE must not change the result.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PWD=" + dir}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(cli, " "), strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// composeCLIs are the compose implementations to check: docker-compose v1 must
// be installed (README documents it); `docker compose` is checked where present.
func composeCLIs(t *testing.T) [][]string {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatalf("docker-compose is required for the compose checks: %v", err)
	}
	clis := [][]string{{"docker-compose"}}
	if exec.Command("docker", "compose", "version").Run() == nil {
		clis = append(clis, []string{"docker", "compose"})
	} else {
		t.Log("`docker compose` (v2) is not installed here: only docker-compose v1 is checked")
	}
	return clis
}

// The compose files, used as documented from another repository: the build
// context is this source tree, the working repository is the caller's
// directory, and the supervisor's base images are overridable for offline builds.
func TestComposeConfig(t *testing.T) {
	root := repoRoot(t)
	target := t.TempDir() // stands for the repository the agent works on
	main := filepath.Join(root, "docker-compose.yml")
	local := filepath.Join(root, "docker-compose.local.yml")
	project := "trakkar-config-test"
	cases := []struct {
		name  string
		dir   string
		env   []string
		args  []string
		wants []string
	}{
		{"from the target repository", target, nil, []string{"-f", main, "-p", project}, []string{
			"context: " + root + "\n", "working_dir: " + target + "\n", "- " + target + ":" + target + ":rw\n",
			"- /var/run/docker.sock:/var/run/docker.sock:rw\n", "DEBIAN_IMAGE: debian:bookworm-slim\n",
			"image: trakkar-agent/supervisor:latest\n",
		}},
		{"with the local stand-in", target, nil, []string{"-f", main, "-f", local, "-p", project}, []string{
			"context: " + root + "\n", "dev-server", "TRAKKAR_API_URL: http://dev-server:8484\n", "127.0.0.1:8484:8484",
		}},
		{"offline bases and another image tag", target,
			[]string{"DEBIAN_IMAGE=local/debian:x", "GOLANG_IMAGE=local/golang:y", "TRAKKAR_SUPERVISOR_IMAGE=local/sup:z"},
			[]string{"-f", main, "-f", local, "-p", project}, []string{
				"DEBIAN_IMAGE: local/debian:x\n", "GOLANG_IMAGE: local/golang:y\n", "image: local/sup:z\n",
			}},
		{"with --project-directory and TRAKKAR_AGENT_SRC", target, []string{"TRAKKAR_AGENT_SRC=" + root},
			[]string{"-f", main, "--project-directory", target, "-p", project}, []string{
				"context: " + root + "\n", "working_dir: " + target + "\n",
			}},
	}
	for _, cli := range composeCLIs(t) {
		for _, c := range cases {
			t.Run(strings.Join(cli, "_")+"/"+c.name, func(t *testing.T) {
				out := composeConfig(t, cli, c.dir, c.env, c.args...)
				for _, want := range c.wants {
					if !strings.Contains(out, want) {
						t.Errorf("config lacks %q:\n%s", want, out)
					}
				}
			})
		}
	}
}

// The compose files' default golang image follows the Dockerfiles' GO_VERSION.
func TestComposeGoVersionInStep(t *testing.T) {
	root := repoRoot(t)
	re := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`)
	for _, dockerfile := range []string{"images/base/Dockerfile", "images/supervisor/Dockerfile"} {
		b, err := os.ReadFile(filepath.Join(root, dockerfile))
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s has no ARG GO_VERSION", dockerfile)
		}
		want := "${GOLANG_IMAGE:-golang:" + string(m[1]) + "-bookworm}"
		for _, f := range []string{"docker-compose.yml", "docker-compose.local.yml"} {
			c, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(c), want) {
				t.Errorf("%s does not default GOLANG_IMAGE to %s (GO_VERSION of %s)", f, want, dockerfile)
			}
		}
	}
}

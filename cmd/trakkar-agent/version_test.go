package main

import (
	"debug/buildinfo"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
)

func TestVersionFromBuildInfo(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "dev"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs("vcs.revision", rev)}, "v1.4.0"},
		{"revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "false")}, "0123456789ab"},
		{"modified tree", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "true")}, "0123456789ab-dirty"},
		{"short revision", &debug.BuildInfo{Settings: vcs("vcs.revision", "abc")}, "abc"},
		{"nothing known", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
	}
	for _, c := range cases {
		if got := versionFrom(c.info); got != c.want {
			t.Errorf("%s: versionFrom = %q, want %q", c.name, got, c.want)
		}
	}
}

// vcsBinary builds trakkar-agent from a clone of the committed tree with VCS
// stamping on, as a release build from a checkout is. -trimpath, as README
// builds it, keeps the clone's path out of the build cache's keys: only the
// link differs from the module's other builds, not every package.
func vcsBinary(t *testing.T) string {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("find the checkout: %v", err)
	}
	clone := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "clone", "-q", "--", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "trakkar-agent")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=true", "-o", bin, "./cmd/trakkar-agent")
	build.Dir = clone
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// --version prints what the binary's build info says, and the same string
// goes to Trakkar in the User-Agent.
func TestVersionOfTheBinary(t *testing.T) {
	bin := vcsBinary(t)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := versionFrom(info)
	if want == "dev" {
		t.Fatalf("a build from a git checkout carries no version: %+v", info)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "trakkar-agent version "+want {
		t.Fatalf("--version printed %q, want the build info's %q", got, want)
	}

	st := standin.New(standin.Options{Token: "trk_agent_versiontest"})
	t.Cleanup(st.Close)
	seen := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.UserAgent():
		default:
		}
		st.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cmd := exec.Command(bin, "--dry-run", "--provider", "claude_code", "--poll-wait", "1")
	cmd.Dir = gitInit(t, "https://github.com/acme/web.git")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TRAKKAR_TOKEN=trk_agent_versiontest",
		"TRAKKAR_API_URL=" + srv.URL, "TRAKKAR_RUNNER_ID=rnr_version_" + testimage.RunID()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case ua := <-seen:
		if !strings.HasSuffix(ua, "/"+want) {
			t.Fatalf("User-Agent %q does not carry the version %q", ua, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no request reached Trakkar")
	}
}

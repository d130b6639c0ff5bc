package images_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/testimage"
)

// standins builds (or reuses, by content) the stand-ins of debian:bookworm-slim
// and golang:<v>-bookworm, and gives them tags of this run only, removed at the
// end; the content-tagged images stay as the cache of later runs.
func standins(t *testing.T, id string) (debian, golang string) {
	t.Helper()
	out := run(t, 15*time.Minute, nil, "bash", "images/build-standins.sh")
	refs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			refs[k] = v
		}
	}
	if refs["DEBIAN_IMAGE"] == "" || refs["GOLANG_IMAGE"] == "" {
		t.Fatalf("build-standins.sh printed no image references:\n%s", out)
	}
	debian = "trakkar-agent/standin-debian:run-" + id
	golang = "trakkar-agent/standin-golang:run-" + id
	for src, dst := range map[string]string{refs["DEBIAN_IMAGE"]: debian, refs["GOLANG_IMAGE"]: golang} {
		run(t, time.Minute, nil, "docker", "tag", src, dst)
		untag(t, dst)
	}
	return debian, golang
}

// untag removes a tag this test made when it ends. --no-prune keeps the
// untagged parent layers: they are the build cache that makes the next run
// fast. The test never prunes: the engine is shared.
func untag(t *testing.T, ref string) {
	t.Cleanup(func() {
		out, err := exec.Command("docker", "image", "rm", "--no-prune", ref).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "No such image") { // a failed build made none
			t.Errorf("remove %s: %v\n%s", ref, err, out)
		}
	})
}

// fakeClaudePackage packs the fake claude CLI as an npm package tarball, the
// way `npm pack` lays it out: package/package.json and the bin it names.
func fakeClaudePackage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pkg := filepath.Join(dir, "package")
	if err := os.MkdirAll(filepath.Join(pkg, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, 5*time.Minute, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(pkg, "bin", "claude"), "./internal/fakeagent/claude")
	manifest := `{"name":"@anthropic-ai/claude-code","version":"0.0.0-fake","bin":{"claude":"bin/claude"}}` + "\n"
	if err := os.WriteFile(filepath.Join(pkg, "package.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(dir, "claude-code-fake.tgz")
	// Byte-for-byte the same tarball each run, so the image build reuses its cache.
	run(t, time.Minute, nil, "bash", "-c", `tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - package | gzip -n >"$2"`,
		"pack", dir, tgz)
	return tgz
}

// inspect returns a Go template's value for an image.
func inspect(t *testing.T, ref, format string) string {
	t.Helper()
	return strings.TrimSpace(run(t, time.Minute, nil, "docker", "image", "inspect", "-f", format, ref))
}

// The production images, built exactly as written with no registry, then one
// task run end to end by the built supervisor image driving the built
// claude-code image (with a fake claude installed by npm from a tarball).
func TestProductionImagesOffline(t *testing.T) {
	testimage.Docker(t) // fails, never skips, without Docker
	id := testimage.RunID()
	start := time.Now()
	debian, golang := standins(t, id)
	t.Logf("stand-in bases ready in %s", time.Since(start).Round(time.Second))

	// Tags of this run only; the version stamped in the binary is fixed, so an
	// unchanged tree reuses the build cache of the previous run.
	version, stamp := "t"+id, "images-test"
	step := time.Now()
	tgz := fakeClaudePackage(t)
	refs := map[string]string{
		"runtime":     "trakkar-agent/worker-runtime:" + version,
		"base":        "trakkar-agent/worker-base:" + version,
		"claude-code": "trakkar-agent/worker-claude-code:" + version,
		"supervisor":  "trakkar-agent/supervisor:" + version,
	}
	for _, ref := range refs {
		untag(t, ref)
	}
	out := run(t, 30*time.Minute, []string{"DEBIAN_IMAGE=" + debian, "GOLANG_IMAGE=" + golang},
		"bash", "images/build.sh", "--version", version, "--stamp", stamp, "--claude-code-package", tgz, "base", "claude-code", "supervisor")
	t.Logf("images built in %s", time.Since(step).Round(time.Second))
	if got, want := strings.Fields(out), []string{refs["runtime"], refs["base"], refs["claude-code"], refs["supervisor"]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("build.sh printed %q, want %q", got, want)
	}

	if got := inspect(t, refs["base"], "{{json .Config.Entrypoint}} {{.Config.User}} {{.Config.WorkingDir}}"); got != `["trakkar-worker"] agent /workspace` {
		t.Errorf("base entrypoint, user, workdir: %s", got)
	}
	if got := inspect(t, refs["claude-code"], "{{json .Config.Entrypoint}} {{.Config.User}}"); got != `["trakkar-worker"] agent` {
		t.Errorf("claude-code entrypoint, user: %s", got)
	}
	// The CLI layers sit on the runtime image, not on the worker binary, so a
	// new worker reuses them; the binary copied in last is the base's.
	layers := func(ref string) string { return strings.Trim(inspect(t, ref, "{{json .RootFS.Layers}}"), "[]") }
	if rt, cc := layers(refs["runtime"]), layers(refs["claude-code"]); !strings.HasPrefix(cc, rt+",") {
		t.Errorf("claude-code is not built on the runtime image's layers:\nruntime %s\nclaude-code %s", rt, cc)
	}
	sum := func(ref string) string {
		out := run(t, time.Minute, nil, "docker", "run", "--rm", "--entrypoint", "sha256sum", ref, "/usr/local/bin/trakkar-worker")
		if f := strings.Fields(out); len(f) > 0 {
			return f[0]
		}
		t.Fatalf("sha256sum in %s printed nothing", ref)
		return ""
	}
	if b, cc := sum(refs["base"]), sum(refs["claude-code"]); b != cc {
		t.Errorf("claude-code's trakkar-worker (sha256 %s) is not the base's (%s)", cc, b)
	}
	if got := run(t, time.Minute, nil, "docker", "run", "--rm", "--entrypoint", "claude", refs["claude-code"], "--version"); !strings.Contains(got, "(fake)") {
		t.Errorf("claude in the image is not the fake from the tarball: %q", got)
	}
	if got := strings.TrimSpace(run(t, time.Minute, nil, "docker", "run", "--rm", refs["supervisor"], "--version")); !strings.Contains(got, stamp) {
		t.Errorf("supervisor --version printed %q, want the stamped version %s", got, stamp)
	}
	if got := run(t, time.Minute, nil, "docker", "run", "--rm", "--entrypoint", "git", refs["supervisor"], "--version"); !strings.HasPrefix(got, "git version") {
		t.Errorf("no git in the supervisor image: %q", got)
	}

	step = time.Now()
	runTask(t, refs["supervisor"], refs["claude-code"])
	t.Logf("task run through the images in %s", time.Since(step).Round(time.Second))

	step = time.Now()
	composeUp(t, refs["supervisor"], refs["claude-code"], debian, golang)
	t.Logf("compose stack up and down in %s; whole test %s", time.Since(step).Round(time.Second), time.Since(start).Round(time.Second))
}

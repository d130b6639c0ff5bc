package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/testimage"
)

// runShell runs script under the test image's busybox sh with the volumes and
// returns its exit code and output.
func runShell(t *testing.T, c *docker.Client, image, script string, vols []docker.VolumeMount) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := c.Create(ctx, docker.Spec{
		Image: image, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script},
		User: "1000:1000", Network: "none", Labels: map[string]string{"in.trakkar.agent.test": "1"}, Volumes: vols,
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer func() {
		if err := c.Remove(context.Background(), id); err != nil {
			t.Errorf("remove: %v", err)
		}
	}()
	waitC, err := c.Start(ctx, id)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	res := <-waitC
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var out strings.Builder
	if err := c.Logs(ctx, id, false, &out, &out); err != nil {
		t.Fatal(err)
	}
	return res.Status.Code, out.String()
}

// An overlay volume reads through to its lower folder, keeps every write in
// its upper folder (across containers), never changes the lower folder, and is
// found by label, refused removal while in use, and removed idempotently.
func TestOverlayVolume(t *testing.T) {
	image := testimage.Ensure(t)
	c := testimage.Docker(t)
	ctx := context.Background()
	dir := t.TempDir()
	lower, upper, work := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{filepath.Join(lower, "pkg"), upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "pkg", "index.js"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// The task user must own the writable layer (the supervisor does this).
		for _, d := range []string{upper, filepath.Join(lower, "pkg")} {
			if err := os.Lchown(d, 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}
	}
	name := "trakkar-test-overlay-" + testimage.RunID() + "-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { _ = c.RemoveVolume(context.Background(), name) })
	vol := []docker.VolumeMount{{Name: name, Target: "/w/node_modules", Labels: map[string]string{"in.trakkar.agent.test": name},
		Overlay: &docker.Overlay{Lower: lower, Upper: upper, Work: work}}}

	code, out := runShell(t, c, image, `cat /w/node_modules/pkg/index.js && echo new > /w/node_modules/pkg/new.js && rm /w/node_modules/pkg/index.js && ls /w/node_modules/pkg`, vol)
	if code != 0 || !strings.Contains(out, "v1") || strings.Contains(out, "index.js") || !strings.Contains(out, "new.js") {
		t.Fatalf("first container: exit %d\n%s", code, out)
	}
	code, out = runShell(t, c, image, `ls /w/node_modules/pkg && cat /w/node_modules/pkg/new.js`, vol)
	if code != 0 || strings.TrimSpace(out) != "new.js\nnew" {
		t.Fatalf("second container does not see the first one's writes: exit %d\n%s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(lower, "pkg", "index.js")); err != nil || string(b) != "v1\n" {
		t.Fatalf("lower changed: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(lower, "pkg", "new.js")); err == nil {
		t.Fatal("a write reached the lower folder")
	}
	if b, err := os.ReadFile(filepath.Join(upper, "pkg", "new.js")); err != nil || string(b) != "new\n" {
		t.Fatalf("upper lacks the write: %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(upper, "pkg", "index.js")); err != nil || fi.Mode()&os.ModeCharDevice == 0 ||
		fi.Sys().(*syscall.Stat_t).Rdev != 0 {
		t.Fatalf("the deletion is not an overlay whiteout in upper: %v %v", fi, err)
	}

	vols, err := c.ListVolumes(ctx, map[string]string{"in.trakkar.agent.test": name})
	if err != nil || len(vols) != 1 || vols[0].Name != name {
		t.Fatalf("list by label: %+v %v", vols, err)
	}
	// In use by a created container: removal is refused.
	id, err := c.Create(ctx, docker.Spec{Image: image, User: "1000:1000", Network: "none", Volumes: vol,
		Labels: map[string]string{"in.trakkar.agent.test": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveVolume(ctx, name); err == nil {
		t.Error("removed a volume a container uses")
	}
	if err := c.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := c.RemoveVolume(ctx, name); err != nil {
			t.Fatalf("remove volume (%d): %v", i, err)
		}
	}
	if vols, _ := c.ListVolumes(ctx, map[string]string{"in.trakkar.agent.test": name}); len(vols) != 0 {
		t.Fatalf("volume still listed: %+v", vols)
	}
	if _, err := os.Stat(filepath.Join(upper, "pkg", "new.js")); err != nil {
		t.Fatalf("removing the volume lost the upper folder's data: %v", err)
	}
}

// A new named volume mounted over one of the image's 1777 cache folders is
// writable by any non-root uid.
func TestCacheVolumeWritableByAnyUser(t *testing.T) {
	image := testimage.Ensure(t)
	c := testimage.Docker(t)
	name := "trakkar-test-cache-" + testimage.RunID() + "-" + strings.ToLower(t.Name())
	t.Cleanup(func() { _ = c.RemoveVolume(context.Background(), name) })
	vol := []docker.VolumeMount{{Name: name, Target: "/trakkar/cache/npm"}}
	for _, user := range []string{"1000:1000", "4242:4242"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		id, err := c.Create(ctx, docker.Spec{Image: image, Entrypoint: []string{"/bin/sh", "-c"},
			Cmd: []string{`touch "/trakkar/cache/npm/$(id -u)" && ls /trakkar/cache/npm`}, User: user, Network: "none",
			Labels: map[string]string{"in.trakkar.agent.test": "1"}, Volumes: vol})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		waitC, err := c.Start(ctx, id)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		res := <-waitC
		var out strings.Builder
		_ = c.Logs(ctx, id, false, &out, &out)
		_ = c.Remove(ctx, id)
		cancel()
		if res.Err != nil || res.Status.Code != 0 {
			t.Fatalf("user %s could not write the cache: %v %d\n%s", user, res.Err, res.Status.Code, out.String())
		}
	}
}

package testimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// GitImage is the test image with a Debian userland and git.
const GitImage = "trakkar-agent/worker-test-git:dev"

const gitBuildScript = "images/build-test-git-image.sh"

var (
	gitOnce sync.Once
	gitErr  error
)

// EnsureGit builds (once per process, reusing an unchanged one) the worker test
// image that has git, for tests of the agent's in-container repository. Its
// Debian base comes from debootstrap, so the first build takes a minute or two.
func EnsureGit(t testing.TB) string {
	t.Helper()
	bins := Ensure(t)
	gitOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			gitErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, gitBuildScript))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "BINARIES_IMAGE="+bins, "IMAGE="+GitImage)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			gitErr = fmt.Errorf("%s: %w\n%s", gitBuildScript, err, out.String())
		}
	})
	if gitErr != nil {
		t.Fatalf("build the git worker test image: %v", gitErr)
	}
	return GitImage
}

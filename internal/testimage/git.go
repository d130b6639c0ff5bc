package testimage

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// gitImagePrefix names the test image with a Debian userland and git; its tag
// is the content tag of the scratch image it takes the binaries from.
const gitImagePrefix = "trakkar-agent/worker-test-git:"

const gitBuildScript = "images/build-test-git-image.sh"

var (
	gitOnce  sync.Once
	gitErr   error
	gitImage string
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
		// Bounds a failure only. The wait includes the script's lock, held
		// by whichever test process builds the base first; on an empty
		// engine with two suites at once, waiting plus one debootstrap took
		// over 10 minutes.
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
		defer cancel()
		cmd := scriptCommand(ctx, filepath.Join(root, gitBuildScript))
		cmd.Dir = root
		_, tag, _ := strings.Cut(bins, ":")
		gitImage = gitImagePrefix + tag
		cmd.Env = append(os.Environ(), "BINARIES_IMAGE="+bins, "IMAGE="+gitImage)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			gitErr = fmt.Errorf("%s: %w\n%s", gitBuildScript, err, out.String())
		}
	})
	if gitErr != nil {
		t.Fatalf("build the git worker test image: %v", gitErr)
	}
	return gitImage
}

// ObjectStoreBytes is the size of every file under repo's .git/objects: what
// a test watches to prove that refused content never reached the store.
func ObjectStoreBytes(t testing.TB, repo string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(repo, ".git", "objects"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

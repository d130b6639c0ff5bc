// Package testimage gives tests the offline worker image and a Docker client.
// Tests that need Docker fail, never skip, when it is missing: a Docker test that
// silently skips would hide a broken sandbox.
package testimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/docker"
)

const (
	modulePath  = "github.com/trakkar/trakkar-agent"
	buildScript = "images/build-test-image.sh"
	// buildTimeout covers a cold build: compiling two Go programs, maybe
	// installing busybox-static, and the image build itself.
	buildTimeout = 10 * time.Minute
)

var (
	once     sync.Once
	imageRef string
	buildErr error
)

// Docker returns a client for the engine named by the environment, closed when
// the test ends. It fails the test if the engine is unreachable.
func Docker(t testing.TB) *docker.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := docker.New(ctx, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("docker is required: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Ensure builds the offline worker test image once per test process (reusing an
// unchanged one) and returns its reference. It fails the test if Docker is
// unreachable or the build fails.
func Ensure(t testing.TB) string {
	t.Helper()
	c := Docker(t)
	once.Do(func() {
		// Without IMAGE the script tags the image by its content, so
		// checkouts with different code never share a tag on one engine.
		imageRef, _, buildErr = build(os.Getenv("IMAGE"), nil)
	})
	if buildErr != nil {
		t.Fatalf("build the worker test image: %v", buildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ok, err := c.ImageExists(ctx, imageRef)
	if err != nil {
		t.Fatalf("check the worker test image: %v", err)
	}
	if !ok {
		t.Fatalf("the worker test image %s is missing after the build (removed by someone else?)", imageRef)
	}
	return imageRef
}

// build runs the build script for ref (empty: a tag named by the content) with
// extra environment entries and returns the built tag and the script's output.
func build(ref string, extraEnv []string) (string, string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := scriptCommand(ctx, filepath.Join(root, buildScript))
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "IMAGE="+ref, "CONTENT_TAG=1"), extraEnv...)
	var out SyncBuffer
	var stdout bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, &stdout)
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return "", out.String(), fmt.Errorf("%s: %w\n%s", buildScript, err, tail(out.String(), 40))
	}
	tag := strings.TrimSpace(tail(stdout.String(), 1))
	if tag == "" {
		return "", out.String(), fmt.Errorf("%s printed no image tag\n%s", buildScript, tail(out.String(), 40))
	}
	return tag, out.String(), nil
}

// moduleRoot walks up from the working directory (a test's package directory)
// to this module's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isModule(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod of " + modulePath + " above the working directory")
		}
		dir = parent
	}
}

func isModule(gomod []byte) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1] == modulePath
		}
	}
	return false
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

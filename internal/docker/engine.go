package docker

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
)

// Engine is what the engine says about itself: what startup checks limits
// against and what doctor shows.
type Engine struct {
	APIVersion     string // negotiated with the engine
	ServerVersion  string
	CPUs           int
	MemoryBytes    int64
	Runtimes       []string // registered OCI runtimes, sorted
	DefaultRuntime string
}

// Engine asks the engine for its version and resources.
func (c *Client) Engine(ctx context.Context) (Engine, error) {
	info, err := c.cli.Info(ctx)
	if err != nil {
		return Engine{}, fmt.Errorf("engine info: %w", err)
	}
	e := Engine{
		APIVersion: c.cli.ClientVersion(), ServerVersion: info.ServerVersion,
		CPUs: info.NCPU, MemoryBytes: info.MemTotal, DefaultRuntime: info.DefaultRuntime,
	}
	for name := range info.Runtimes {
		e.Runtimes = append(e.Runtimes, name)
	}
	sort.Strings(e.Runtimes)
	return e, nil
}

// CheckImageRef says whether ref is a well-formed image reference, as the
// engine would parse it ("name[:tag][@digest]", lower-case repository).
func CheckImageRef(ref string) error {
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("not a valid image reference: %w", err)
	}
	return nil
}

// ImageConfig is the part of an image's configuration that decides how a
// worker container starts.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
}

// InspectImage returns the local image's start configuration; IsNotFound(err)
// when the engine does not have it.
func (c *Client) InspectImage(ctx context.Context, ref string) (ImageConfig, error) {
	img, err := c.cli.ImageInspect(ctx, ref)
	if err != nil {
		return ImageConfig{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if img.Config == nil {
		return ImageConfig{}, nil
	}
	return ImageConfig{Entrypoint: img.Config.Entrypoint, Cmd: img.Config.Cmd, Env: img.Config.Env, User: img.Config.User}, nil
}

// FindInImage looks for an executable named name in dirs of the image's
// filesystem and returns its path, "" when none is there. The image is never
// run: a container is created (no network, never started), its files are
// stat'ed, and it is removed.
func (c *Client) FindInImage(ctx context.Context, ref, name string, dirs []string) (string, error) {
	created, err := c.cli.ContainerCreate(ctx,
		&container.Config{Image: ref, Entrypoint: []string{"/nonexistent"}, NetworkDisabled: true, Labels: map[string]string{"trakkar.probe": "1"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return "", fmt.Errorf("create probe container of %s: %w", ref, err)
	}
	defer func() {
		// A fresh context: the probe is removed even when ctx has ended.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.cli.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true})
	}()
	for _, dir := range dirs {
		p := path.Join(dir, name)
		st, err := c.cli.ContainerStatPath(ctx, created.ID, p)
		if IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("look for %s in %s: %w", p, ref, err)
		}
		// A symlink (npm's bin links) counts: its target is not resolved here.
		if st.Mode&os.ModeSymlink != 0 || (!st.Mode.IsDir() && st.Mode.Perm()&0o111 != 0) {
			return p, nil
		}
	}
	return "", nil
}

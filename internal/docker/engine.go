package docker

import (
	"context"
	"fmt"
	"sort"

	"github.com/distribution/reference"
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

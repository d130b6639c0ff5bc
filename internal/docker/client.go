// Package docker runs hardened task containers on a Docker engine. It is the only
// package that imports the Docker SDK, so moving to another SDK or runtime touches
// nothing else.
package docker

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"go.uber.org/zap"
)

// minAPIVersion is the oldest engine API we accept: wait conditions (next-exit),
// which Start relies on to never miss an exit, arrived in 1.30.
const minAPIVersion = "1.30"

// pingTimeout bounds the reachability check in New when ctx has no deadline.
const pingTimeout = 10 * time.Second

// Client talks to one Docker engine.
type Client struct {
	cli     *client.Client
	log     *zap.Logger
	sockets []string // the engine socket DOCKER_HOST points at, refused as a mount
}

// New connects to the engine named by the environment (DOCKER_HOST and friends),
// negotiates the API version and checks that the engine answers.
func New(ctx context.Context, log *zap.Logger) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w (check DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)", err)
	}
	host := cli.DaemonHost()
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ping, err := cli.Ping(pctx)
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("docker is not reachable at %s: %w (is the Docker engine running, and can this user use it? set DOCKER_HOST to point elsewhere)", host, err)
	}
	// Negotiate now: left to the first request, the SDK negotiates lazily and
	// concurrent first requests race on its version field.
	cli.NegotiateAPIVersionPing(ping)
	version := cli.ClientVersion()
	if versions.LessThan(version, minAPIVersion) {
		_ = cli.Close()
		return nil, fmt.Errorf("docker engine at %s speaks API %s; need at least %s (upgrade the Docker engine)", host, version, minAPIVersion)
	}
	c := &Client{cli: cli, log: log.Named("docker")}
	if u, err := url.Parse(host); err == nil && u.Scheme == "unix" && u.Path != "" {
		c.sockets = []string{filepath.Clean(u.Path)}
	}
	c.log.Debug("connected to docker", zap.String("host", host), zap.String("api_version", version),
		zap.String("os_type", ping.OSType))
	return c, nil
}

// Close releases the client's connections.
func (c *Client) Close() error {
	return c.cli.Close()
}

// IsNotFound reports whether err says that a container or image does not exist.
func IsNotFound(err error) bool {
	return cerrdefs.IsNotFound(err)
}

// ImageExists reports whether the engine has the image ref locally. Nothing is
// pulled: the caller decides what to do about a missing image.
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	if ref == "" {
		return false, fmt.Errorf("image exists: empty image reference")
	}
	_, err := c.cli.ImageInspect(ctx, ref)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return true, nil
}

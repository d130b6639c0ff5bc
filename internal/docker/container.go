package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
)

// ExitStatus is how a container ended.
type ExitStatus struct {
	Code      int
	OOMKilled bool
}

// WaitResult is delivered once on the channel returned by Start.
type WaitResult struct {
	Status ExitStatus
	Err    error
}

// Container is one entry of List.
type Container struct {
	ID      string
	Name    string
	Image   string
	State   string // created, running, exited, …
	Labels  map[string]string
	Created time.Time
}

// Create validates s, applies the hardening, makes the spec's missing volumes
// and creates (does not start) the container.
func (c *Client) Create(ctx context.Context, s Spec) (string, error) {
	cfg, hc, err := s.build(c.sockets)
	if err != nil {
		return "", err
	}
	if err := c.ensureVolumes(ctx, s.Volumes); err != nil {
		return "", err
	}
	var nc *network.NetworkingConfig
	if len(s.Aliases) > 0 && s.Network != "" && s.Network != "none" && s.Network != "bridge" {
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			s.Network: {Aliases: append([]string(nil), s.Aliases...)},
		}}
	}
	resp, err := c.cli.ContainerCreate(ctx, cfg, hc, nc, nil, s.Name)
	if err != nil {
		return "", fmt.Errorf("create container from %s: %w", s.Image, err)
	}
	for _, w := range resp.Warnings {
		// A warning can mean a limit was silently dropped (e.g. swap accounting off).
		c.log.Warn("engine warning on create", zap.String("container_id", resp.ID), zap.String("warning", w))
	}
	c.log.Debug("container created", zap.String("container_id", resp.ID), zap.String("image", s.Image),
		zap.String("name", s.Name))
	return resp.ID, nil
}

// Start starts the container. The wait is registered before the start so a
// container that exits at once is not missed. The channel yields one result and
// is closed; ctx bounds the wait too, and when it ends the result carries its error.
func (c *Client) Start(ctx context.Context, id string) (<-chan WaitResult, error) {
	wctx, cancel := context.WithCancel(ctx)
	respC, errC := c.cli.ContainerWait(wctx, id, container.WaitConditionNextExit)
	// ContainerWait has already sent the request; a failure to register is in errC now.
	select {
	case err := <-errC:
		cancel()
		return nil, fmt.Errorf("wait for container %s: %w", id, err)
	default:
	}
	if err := c.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		cancel()
		return nil, fmt.Errorf("start container %s: %w", id, err)
	}
	c.log.Debug("container started", zap.String("container_id", id))
	out := make(chan WaitResult, 1)
	go func() {
		defer close(out)
		defer cancel()
		st, err := c.collect(wctx, id, respC, errC)
		out <- WaitResult{Status: st, Err: err}
	}()
	return out, nil
}

// Wait waits until an existing container is not running and returns how it ended.
func (c *Client) Wait(ctx context.Context, id string) (ExitStatus, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	respC, errC := c.cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	return c.collect(wctx, id, respC, errC)
}

func (c *Client) collect(ctx context.Context, id string, respC <-chan container.WaitResponse, errC <-chan error) (ExitStatus, error) {
	select {
	case err := <-errC:
		return ExitStatus{}, fmt.Errorf("wait for container %s: %w", id, err)
	case resp := <-respC:
		st := ExitStatus{Code: int(resp.StatusCode)}
		if resp.Error != nil && resp.Error.Message != "" {
			return st, fmt.Errorf("wait for container %s: %s", id, resp.Error.Message)
		}
		// The wait response does not say why the process died; the state does.
		info, err := c.cli.ContainerInspect(ctx, id)
		if err != nil {
			c.log.Warn("inspect after exit failed; OOM state unknown", zap.String("container_id", id), zap.Error(err))
			return st, nil
		}
		if info.State != nil {
			st.OOMKilled = info.State.OOMKilled
		}
		return st, nil
	}
}

// Logs copies the container's stdout and stderr, demultiplexed, to the writers
// (nil discards). With follow it returns when the container's output ends, that
// is when it exits; it returns ctx's error when ctx ends first.
func (c *Client) Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error {
	return c.copyLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow}, stdout, stderr)
}

// LogsSince is Logs from a point in time (zero: from the start), with every line
// prefixed by the engine's RFC 3339 timestamp and a space. A restarted
// supervisor uses the timestamps to continue exactly where it stopped. Each
// line is delivered once and whole: repeats the engine makes when the log
// rotates are dropped, and a long line the engine split is joined again (see
// onceWriter). Lines the rotation removed before they were read are missing.
func (c *Client) LogsSince(ctx context.Context, id string, since time.Time, follow bool, stdout, stderr io.Writer) error {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Timestamps: true}
	opts.Since = sinceArg(since)
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	out, errw := &onceWriter{w: stdout}, &onceWriter{w: stderr}
	for broken := 0; ; broken++ {
		err := c.copyLogs(ctx, id, opts, out, errw)
		if err == nil || !follow || ctx.Err() != nil {
			if err != nil || !follow {
				return err
			}
			break
		}
		// The engine's follower breaks when a rotated file is gone before it
		// was read ("Error grabbing logs: no such file or directory"). Follow
		// again from the last delivered line rather than go deaf.
		if broken >= maxFollowRestarts {
			return err
		}
		c.log.Warn("following container logs broke; following again", zap.String("container_id", id), zap.Error(err))
		if from := catchUpFrom(out.last, errw.last); !from.IsZero() {
			opts.Since = sinceArg(from)
		}
		out.reread()
		errw.reread()
		if err := backoff.Sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("logs of container %s: %w", id, err)
		}
	}
	// The follow ended with the container's output, but a follower can fall
	// behind a rotation and miss lines, the last ones included. Read once more
	// what is still on disk after the last delivered line; the writers drop
	// what was delivered already.
	opts.Follow = false
	if from := catchUpFrom(out.last, errw.last); !from.IsZero() {
		opts.Since = sinceArg(from)
	}
	out.reread()
	errw.reread()
	return c.copyLogs(ctx, id, opts, out, errw)
}

// maxFollowRestarts bounds how often one LogsSince follows again after the
// engine broke the stream.
const maxFollowRestarts = 20

func sinceArg(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func (c *Client) copyLogs(ctx context.Context, id string, opts container.LogsOptions, stdout, stderr io.Writer) error {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	rc, err := c.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	if ctx.Err() != nil {
		return fmt.Errorf("logs of container %s: %w", id, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
	return nil
}

// Stop sends the stop signal (SIGTERM unless the image says otherwise) and
// SIGKILL after grace, rounded up to whole seconds. A container that is already
// stopped or gone is not an error. ctx must outlive grace.
func (c *Client) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := 0
	if grace > 0 {
		secs = int(math.Ceil(grace.Seconds()))
	}
	err := c.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	c.log.Debug("container stopped", zap.String("container_id", id), zap.Duration("grace", grace))
	return nil
}

// Remove force-removes the container and its anonymous volumes. A container that
// is already gone, or already being removed, is not an error.
func (c *Client) Remove(ctx context.Context, id string) error {
	err := c.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil:
		c.log.Debug("container removed", zap.String("container_id", id))
		return nil
	case IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		return nil
	}
	return fmt.Errorf("remove container %s: %w", id, err)
}

// List returns containers in every state that carry all the given labels. A label
// with an empty value matches on the key alone.
func (c *Client) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	args := filters.NewArgs()
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			return nil, errors.New("list containers: empty label key")
		}
		if v := labels[k]; v != "" {
			args.Add("label", k+"="+v)
		} else {
			args.Add("label", k)
		}
	}
	sums, err := c.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(sums))
	for _, s := range sums {
		name := ""
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, Container{
			ID:      s.ID,
			Name:    name,
			Image:   s.Image,
			State:   string(s.State),
			Labels:  s.Labels,
			Created: time.Unix(s.Created, 0),
		})
	}
	return out, nil
}

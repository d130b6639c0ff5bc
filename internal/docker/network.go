package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// Network is a network the runner created.
type Network struct {
	ID, Name string
	Internal bool
	Labels   map[string]string
}

// CreateNetwork creates a bridge network. An internal one has no route out of
// the host: its members reach only each other.
func (c *Client) CreateNetwork(ctx context.Context, name string, internal bool, labels map[string]string) (string, error) {
	resp, err := c.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge", Internal: internal, Labels: labels,
	})
	if err != nil {
		return "", fmt.Errorf("create network %s: %w", name, err)
	}
	return resp.ID, nil
}

// RemoveNetwork removes a network; one that is already gone is not an error.
func (c *Client) RemoveNetwork(ctx context.Context, id string) error {
	if err := c.cli.NetworkRemove(ctx, id); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", id, err)
	}
	return nil
}

// Connect attaches a container to a network under extra names.
func (c *Client) Connect(ctx context.Context, networkID, containerID string, aliases []string) error {
	err := c.cli.NetworkConnect(ctx, networkID, containerID, &network.EndpointSettings{Aliases: aliases})
	if err != nil {
		return fmt.Errorf("connect container %s to network %s: %w", containerID, networkID, err)
	}
	return nil
}

// ListNetworks returns networks carrying all the given labels.
func (c *Client) ListNetworks(ctx context.Context, labels map[string]string) ([]Network, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	list, err := c.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]Network, 0, len(list))
	for _, n := range list {
		out = append(out, Network{ID: n.ID, Name: n.Name, Internal: n.Internal, Labels: n.Labels})
	}
	return out, nil
}

// HasRuntime reports whether the engine has the OCI runtime name registered.
func (c *Client) HasRuntime(ctx context.Context, name string) (bool, error) {
	info, err := c.cli.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("engine info: %w", err)
	}
	_, ok := info.Runtimes[name]
	return ok, nil
}

package docker

import (
	"context"
	"fmt"
	"strings"
)

// Inspect is what the security tests need to know about a container: its
// state, identity and every security-relevant host setting.
type Inspect struct {
	ID     string
	Name   string
	Image  string
	User   string
	Labels map[string]string
	State  State

	CapAdd          []string
	CapDrop         []string
	SecurityOpt     []string
	ReadonlyRootfs  bool
	Privileged      bool
	Init            bool
	PidsLimit       int64
	Memory          int64
	MemorySwap      int64
	NanoCPUs        int64
	Ulimits         []Ulimit
	LogConfig       LogConfig
	Mounts          []MountInfo
	Tmpfs           map[string]string
	NetworkMode     string
	NetworkDisabled bool // the engine set up no network at all
	IpcMode         string
	PidMode         string
	UTSMode         string
	UsernsMode      string
	CgroupnsMode    string
	Devices         int // mapped devices plus device cgroup rules and requests
	PortBindings    int // published ports
	PublishAllPorts bool
}

// State is the container's run state.
type State struct {
	Status    string // created, running, exited, …
	Running   bool
	ExitCode  int
	OOMKilled bool
}

// Ulimit is one resource limit inside the container.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// LogConfig is the container's log driver and its options.
type LogConfig struct {
	Type   string
	Config map[string]string
}

// MountInfo is one mount as the engine reports it.
type MountInfo struct {
	Type   string // bind, volume, tmpfs, …
	Name   string // the volume's name, for a volume
	Source string
	Target string
	RW     bool
}

// Inspect returns the container's current state and configuration.
func (c *Client) Inspect(ctx context.Context, id string) (Inspect, error) {
	r, err := c.cli.ContainerInspect(ctx, id)
	if err != nil {
		return Inspect{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	var out Inspect
	if r.ContainerJSONBase != nil {
		out.ID = r.ID
		out.Name = strings.TrimPrefix(r.Name, "/")
		out.Image = r.Image
		if s := r.State; s != nil {
			out.State = State{Status: string(s.Status), Running: s.Running, ExitCode: s.ExitCode, OOMKilled: s.OOMKilled}
		}
		if hc := r.HostConfig; hc != nil {
			out.CapAdd = append([]string(nil), hc.CapAdd...)
			out.CapDrop = append([]string(nil), hc.CapDrop...)
			out.SecurityOpt = append([]string(nil), hc.SecurityOpt...)
			out.ReadonlyRootfs = hc.ReadonlyRootfs
			out.Privileged = hc.Privileged
			out.Init = hc.Init != nil && *hc.Init
			if hc.PidsLimit != nil {
				out.PidsLimit = *hc.PidsLimit
			}
			out.Memory = hc.Memory
			out.MemorySwap = hc.MemorySwap
			out.NanoCPUs = hc.NanoCPUs
			for _, u := range hc.Ulimits {
				if u != nil {
					out.Ulimits = append(out.Ulimits, Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
				}
			}
			out.LogConfig = LogConfig{Type: hc.LogConfig.Type, Config: hc.LogConfig.Config}
			out.Tmpfs = hc.Tmpfs
			out.NetworkMode = string(hc.NetworkMode)
			out.IpcMode = string(hc.IpcMode)
			out.PidMode = string(hc.PidMode)
			out.UTSMode = string(hc.UTSMode)
			out.UsernsMode = string(hc.UsernsMode)
			out.CgroupnsMode = string(hc.CgroupnsMode)
			out.Devices = len(hc.Devices) + len(hc.DeviceCgroupRules) + len(hc.DeviceRequests)
			for _, b := range hc.PortBindings {
				out.PortBindings += len(b)
			}
			out.PublishAllPorts = hc.PublishAllPorts
		}
	}
	if r.Config != nil {
		out.User = r.Config.User
		out.NetworkDisabled = r.Config.NetworkDisabled
		out.Labels = r.Config.Labels
	}
	for _, m := range r.Mounts {
		out.Mounts = append(out.Mounts, MountInfo{Type: string(m.Type), Name: m.Name, Source: m.Source, Target: m.Destination, RW: m.RW})
	}
	return out, nil
}

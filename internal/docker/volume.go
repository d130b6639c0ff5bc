package docker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"go.uber.org/zap"
)

// VolumeMount mounts a named volume into the container. Create makes the
// volume first when it does not exist yet (with Labels and, for an overlay,
// its mount options); an existing volume of that name is used as it is.
type VolumeMount struct {
	Name     string
	Target   string // absolute container path
	ReadOnly bool
	Labels   map[string]string
	Overlay  *Overlay // nil: a plain local volume
}

// Overlay makes a volume an overlay filesystem that the engine mounts when a
// container using it starts: Lower is read through, every write lands in
// Upper (Work is overlay's scratch folder on Upper's filesystem), so Lower
// never changes. All three are absolute host paths; Upper and Work must exist.
type Overlay struct {
	Lower, Upper, Work string
}

// Volume is one entry of ListVolumes.
type Volume struct {
	Name   string
	Labels map[string]string
}

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}$`)

func volumeMounts(vs []VolumeMount, extraSockets []string) ([]mount.Mount, error) {
	out := make([]mount.Mount, 0, len(vs))
	for _, v := range vs {
		if !volumeName.MatchString(v.Name) {
			return nil, fmt.Errorf("spec: volume name %q is not a valid volume name", v.Name)
		}
		if !filepath.IsAbs(v.Target) {
			return nil, fmt.Errorf("spec: volume target %q is not an absolute path", v.Target)
		}
		dst := filepath.Clean(v.Target)
		if dst == "/" {
			return nil, errors.New("spec: volume target \"/\" is not allowed")
		}
		if isSocketPath(dst, nil) {
			return nil, fmt.Errorf("spec: volume target %q is a container engine socket; not allowed", v.Target)
		}
		if v.Overlay != nil {
			if err := v.Overlay.check(extraSockets); err != nil {
				return nil, err
			}
		}
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: v.Name, Target: dst, ReadOnly: v.ReadOnly})
	}
	return out, nil
}

// check applies the bind-mount rules to the overlay's host folders: the engine
// mounts them with its own privileges, so they must be as safe as a bind source.
func (o *Overlay) check(extraSockets []string) error {
	for _, p := range []struct{ name, path string }{{"lower", o.Lower}, {"upper", o.Upper}, {"work", o.Work}} {
		if !filepath.IsAbs(p.path) {
			return fmt.Errorf("spec: overlay %s dir %q is not an absolute path", p.name, p.path)
		}
		// Overlay's option syntax uses ',' and ':' as separators; '\' escapes.
		if strings.ContainsAny(p.path, ",:\\\n") {
			return fmt.Errorf("spec: overlay %s dir %q contains ',', ':' or '\\'; not supported", p.name, p.path)
		}
		clean := filepath.Clean(p.path)
		if err := checkSource(clean, extraSockets); err != nil {
			return err
		}
		if real, err := filepath.EvalSymlinks(clean); err == nil && real != clean {
			if err := checkSource(real, extraSockets); err != nil {
				return fmt.Errorf("%w (via symlink %q)", err, p.path)
			}
		}
	}
	up, work := filepath.Clean(o.Upper), filepath.Clean(o.Work)
	if up == work || within(work, up) || within(up, work) {
		return fmt.Errorf("spec: overlay work dir %q and upper dir %q must be separate folders", o.Work, o.Upper)
	}
	if low := filepath.Clean(o.Lower); within(up, low) || within(low, up) {
		return fmt.Errorf("spec: overlay upper dir %q and lower dir %q must not contain each other", o.Upper, o.Lower)
	}
	return nil
}

func (o *Overlay) options() map[string]string {
	return map[string]string{
		"type":   "overlay",
		"device": "overlay",
		"o": "lowerdir=" + filepath.Clean(o.Lower) + ",upperdir=" + filepath.Clean(o.Upper) +
			",workdir=" + filepath.Clean(o.Work),
	}
}

// ensureVolumes creates the spec's volumes that do not exist yet. Creating an
// existing volume is a no-op for the engine's local driver.
func (c *Client) ensureVolumes(ctx context.Context, vs []VolumeMount) error {
	for _, v := range vs {
		opts := volume.CreateOptions{Name: v.Name, Driver: "local", Labels: v.Labels}
		if v.Overlay != nil {
			opts.DriverOpts = v.Overlay.options()
		}
		if _, err := c.cli.VolumeCreate(ctx, opts); err != nil {
			return fmt.Errorf("create volume %s: %w", v.Name, err)
		}
	}
	return nil
}

// RemoveVolume removes a named volume. A volume that is already gone is not an
// error; one still used by a container is.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	err := c.cli.VolumeRemove(ctx, name, false)
	switch {
	case err == nil:
		c.log.Debug("volume removed", zap.String("volume", name))
		return nil
	case cerrdefs.IsNotFound(err):
		return nil
	}
	return fmt.Errorf("remove volume %s: %w", name, err)
}

// ListVolumes returns the volumes that carry all the given labels (an empty
// value matches on the key alone), sorted by name.
func (c *Client) ListVolumes(ctx context.Context, labels map[string]string) ([]Volume, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		if k == "" {
			return nil, errors.New("list volumes: empty label key")
		}
		if v != "" {
			args.Add("label", k+"="+v)
		} else {
			args.Add("label", k)
		}
	}
	resp, err := c.cli.VolumeList(ctx, volume.ListOptions{Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		if v != nil {
			out = append(out, Volume{Name: v.Name, Labels: v.Labels})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

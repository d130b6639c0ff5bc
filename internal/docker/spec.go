package docker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

// Mount is a bind mount from the host into the container.
type Mount struct {
	Source   string // absolute host path
	Target   string // absolute container path
	ReadOnly bool
}

// Resources caps what one container may use. Zero fields take the defaults below.
type Resources struct {
	MemoryBytes int64
	NanoCPUs    int64
	PidsLimit   int64
}

// Defaults for Resources fields left at zero.
const (
	DefaultMemoryBytes int64 = 4 << 30
	DefaultNanoCPUs    int64 = 2e9
	DefaultPidsLimit   int64 = 1024
)

// Hardening constants applied to every container; exported so callers and tests
// can assert them without repeating magic values.
const (
	LogMaxSize    = "10m"
	LogMaxFile    = "3"
	NofileLimit   = 4096
	DefaultTmpDir = "/tmp"
	// DefaultTmpOpts keeps exec on purpose: agents build and run tests from /tmp
	// (go test, npm), and the engine would otherwise add noexec. The mode is
	// explicit because a tmpfs over an existing image directory takes that
	// directory's mode.
	DefaultTmpOpts = "rw,exec,nosuid,nodev,mode=1777,size=512m"
)

// Spec describes one container. Create adds the hardening; callers cannot turn it off.
type Spec struct {
	Name       string // container name (optional)
	Image      string
	Entrypoint []string // optional; else the image's (e.g. a shell for a verify step)
	Cmd        []string // optional; else the image default
	Env        []string
	User       string // "uid:gid", numeric, neither 0
	WorkingDir string
	Labels     map[string]string
	Mounts     []Mount       // bind mounts; Source must be absolute
	Volumes    []VolumeMount // named volumes, created by Create when missing
	// Tmpfs maps target → mount options; "/tmp" is added when absent. The engine
	// adds noexec unless the options say exec, and a tmpfs over a directory that
	// exists in the image is root-owned with that directory's mode: for a writable
	// HOME pass "uid=U,gid=G" of User (or a mode).
	Tmpfs   map[string]string
	Network string // "" → default bridge; "none"; or a network name
	// HostsFile, with Network "none", is a host file mounted read-only as
	// /etc/hosts, and the engine then sets the container's network up not at
	// all (NetworkDisabled): no network sandbox, no interface, no hook that
	// re-runs dockerd at start. The container keeps its loopback alone, as with
	// plain none, and starts faster. The engine writes /etc/hosts only for a
	// network it set up, hence the file: without it "localhost" would not resolve.
	HostsFile string
	Resources Resources
	// DNS overrides the resolvers the engine's embedded DNS forwards to. Tasks
	// on an internal network get an unroutable one, so names outside the
	// network never resolve (engines before 26.0 would otherwise forward them).
	DNS []string
	// Runtime selects an OCI runtime such as "runsc" (gVisor); "" is the engine's default.
	Runtime string
	// Aliases are extra names of the container on Network.
	Aliases []string
	// OwnInit says the entrypoint is its own init (it reaps orphans and forwards
	// signals), so the engine adds none: the engine's init would hold the
	// container's stdout where the container's other processes can open it.
	OwnInit bool
	// LogMaxSize overrides LogMaxSize (a json-file size such as "512k"); tests
	// make it small so the log rotates in seconds.
	LogMaxSize string
}

// socketPaths are the well-known places of the engine's API socket. Mounting one
// of them, or a directory above one, hands the container root on the host.
var socketPaths = []string{
	"/var/run/docker.sock",
	"/run/docker.sock",
	"/var/run/containerd/containerd.sock",
	"/run/containerd/containerd.sock",
}

// socketNames are file names that are engine sockets wherever they live (rootless
// Docker keeps its socket under $XDG_RUNTIME_DIR).
var socketNames = map[string]bool{
	"docker.sock":     true,
	"containerd.sock": true,
	"podman.sock":     true,
}

// forbiddenSources are host trees that must never be bind-mounted, whole or in part.
var forbiddenSources = []string{"/proc", "/sys", "/dev"}

// build validates s and returns the engine's create configuration with the
// hardening applied. extraSockets are more socket paths to refuse (the one
// DOCKER_HOST points at).
func (s Spec) build(extraSockets []string) (*container.Config, *container.HostConfig, error) {
	if strings.TrimSpace(s.Image) == "" {
		return nil, nil, errors.New("spec: image is empty")
	}
	if err := checkUser(s.User); err != nil {
		return nil, nil, err
	}
	netMode, err := networkMode(s.Network)
	if err != nil {
		return nil, nil, err
	}
	binds := s.Mounts
	if s.HostsFile != "" {
		if netMode != "none" {
			return nil, nil, fmt.Errorf("spec: a hosts file needs network none, not %q", netMode)
		}
		binds = append(append([]Mount(nil), binds...), Mount{Source: s.HostsFile, Target: "/etc/hosts", ReadOnly: true})
	}
	mounts, err := bindMounts(binds, extraSockets)
	if err != nil {
		return nil, nil, err
	}
	vols, err := volumeMounts(s.Volumes, extraSockets)
	if err != nil {
		return nil, nil, err
	}
	mounts = append(mounts, vols...)
	tmpfs, err := tmpfsMounts(s.Tmpfs)
	if err != nil {
		return nil, nil, err
	}
	res, err := resources(s.Resources)
	if err != nil {
		return nil, nil, err
	}
	if s.WorkingDir != "" && !filepath.IsAbs(s.WorkingDir) {
		return nil, nil, fmt.Errorf("spec: working dir %q is not absolute", s.WorkingDir)
	}

	labels := make(map[string]string, len(s.Labels))
	for k, v := range s.Labels {
		labels[k] = v
	}
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: append([]string(nil), s.Entrypoint...),
		Cmd:        append([]string(nil), s.Cmd...),
		Env:        append([]string(nil), s.Env...),
		User:       s.User,
		WorkingDir: s.WorkingDir,
		Labels:     labels,
		// With a hosts file of its own, a container on no network needs
		// nothing of the engine's networking (see HostsFile).
		NetworkDisabled: s.HostsFile != "",
	}
	useInit := !s.OwnInit
	logMax := LogMaxSize
	if s.LogMaxSize != "" {
		logMax = s.LogMaxSize
	}
	hc := &container.HostConfig{
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": logMax, "max-file": LogMaxFile},
		},
		NetworkMode:    container.NetworkMode(netMode),
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		ReadonlyRootfs: true,
		Privileged:     false,
		IpcMode:        container.IPCModePrivate,
		// A private cgroup namespace hides the host's cgroup layout; it works on
		// cgroup v1 with the engines we support (checked by the tests).
		CgroupnsMode: container.CgroupnsModePrivate,
		Tmpfs:        tmpfs,
		Mounts:       mounts,
		Resources:    res,
		Init:         &useInit,
		DNS:          append([]string(nil), s.DNS...),
		Runtime:      s.Runtime,
	}
	return cfg, hc, nil
}

// checkUser insists on an explicit numeric uid:gid. Names are refused because the
// image's /etc/passwd decides what they mean, and a missing gid would default to 0.
func checkUser(u string) error {
	if u == "" {
		return errors.New("spec: user is empty; set a non-root \"uid:gid\"")
	}
	uid, gid, ok := strings.Cut(u, ":")
	if !ok {
		return fmt.Errorf("spec: user %q must be \"uid:gid\"", u)
	}
	for _, part := range []struct{ name, v string }{{"uid", uid}, {"gid", gid}} {
		n, err := strconv.ParseUint(part.v, 10, 32)
		if err != nil {
			return fmt.Errorf("spec: user %q: %s %q is not a number", u, part.name, part.v)
		}
		if n == 0 {
			return fmt.Errorf("spec: user %q: %s 0 (root) is not allowed", u, part.name)
		}
	}
	return nil
}

func networkMode(n string) (string, error) {
	n = strings.TrimSpace(n)
	switch {
	case n == "":
		return "default", nil
	case strings.EqualFold(n, "host"):
		return "", errors.New("spec: network \"host\" is not allowed")
	case strings.HasPrefix(strings.ToLower(n), "container:"):
		return "", fmt.Errorf("spec: network %q would share another container's namespace; not allowed", n)
	}
	return n, nil
}

func bindMounts(ms []Mount, extraSockets []string) ([]mount.Mount, error) {
	out := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		if !filepath.IsAbs(m.Source) {
			return nil, fmt.Errorf("spec: mount source %q is not an absolute path", m.Source)
		}
		if !filepath.IsAbs(m.Target) {
			return nil, fmt.Errorf("spec: mount target %q is not an absolute path", m.Target)
		}
		src, dst := filepath.Clean(m.Source), filepath.Clean(m.Target)
		if dst == "/" {
			return nil, errors.New("spec: mount target \"/\" is not allowed")
		}
		if isSocketPath(dst, nil) {
			return nil, fmt.Errorf("spec: mount target %q is a container engine socket; not allowed", m.Target)
		}
		if err := checkSource(src, extraSockets); err != nil {
			return nil, err
		}
		// The engine follows a symlinked source, so judge where it really points.
		if real, err := filepath.EvalSymlinks(src); err == nil && real != src {
			if err := checkSource(real, extraSockets); err != nil {
				return nil, fmt.Errorf("%w (via symlink %q)", err, m.Source)
			}
		}
		out = append(out, mount.Mount{
			Type:        mount.TypeBind,
			Source:      src,
			Target:      dst,
			ReadOnly:    m.ReadOnly,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		})
	}
	return out, nil
}

func checkSource(src string, extraSockets []string) error {
	if isSocketPath(src, extraSockets) {
		return fmt.Errorf("spec: mount source %q is a container engine socket; not allowed", src)
	}
	for _, sock := range append(append([]string(nil), socketPaths...), extraSockets...) {
		if within(sock, src) {
			return fmt.Errorf("spec: mount source %q contains the engine socket %s; not allowed", src, sock)
		}
	}
	for _, f := range forbiddenSources {
		if within(src, f) {
			return fmt.Errorf("spec: mount source %q is under %s; not allowed", src, f)
		}
	}
	return nil
}

func isSocketPath(p string, extra []string) bool {
	if socketNames[filepath.Base(p)] {
		return true
	}
	for _, s := range append(append([]string(nil), socketPaths...), extra...) {
		if p == s {
			return true
		}
	}
	return false
}

// within reports whether p is dir or lies below it.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+string(os.PathSeparator))
}

func tmpfsMounts(in map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(in)+1)
	for target, opts := range in {
		if !filepath.IsAbs(target) {
			return nil, fmt.Errorf("spec: tmpfs target %q is not an absolute path", target)
		}
		clean := filepath.Clean(target)
		if clean == "/" {
			return nil, errors.New("spec: tmpfs target \"/\" is not allowed")
		}
		out[clean] = opts
	}
	if _, ok := out[DefaultTmpDir]; !ok {
		out[DefaultTmpDir] = DefaultTmpOpts
	}
	return out, nil
}

func resources(r Resources) (container.Resources, error) {
	if r.MemoryBytes < 0 || r.NanoCPUs < 0 || r.PidsLimit < 0 {
		return container.Resources{}, fmt.Errorf("spec: negative resource limit (memory %d, nano cpus %d, pids %d)",
			r.MemoryBytes, r.NanoCPUs, r.PidsLimit)
	}
	if r.MemoryBytes == 0 {
		r.MemoryBytes = DefaultMemoryBytes
	}
	if r.NanoCPUs == 0 {
		r.NanoCPUs = DefaultNanoCPUs
	}
	if r.PidsLimit == 0 {
		r.PidsLimit = DefaultPidsLimit
	}
	pids := r.PidsLimit
	return container.Resources{
		Memory: r.MemoryBytes,
		// Equal to Memory: no swap, so a runaway agent is OOM-killed instead of
		// thrashing the host.
		MemorySwap: r.MemoryBytes,
		NanoCPUs:   r.NanoCPUs,
		PidsLimit:  &pids,
		Ulimits:    []*container.Ulimit{{Name: "nofile", Soft: NofileLimit, Hard: NofileLimit}},
	}, nil
}

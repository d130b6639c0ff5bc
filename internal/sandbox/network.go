package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/egress"
)

// Network policies for task containers.
const (
	NetworkOpen = "open" // the engine's default bridge
	NetworkNone = "none" // no network at all
	// NetworkAllowlist gives the task's containers no network either: their only
	// way out is the egress proxy's unix socket, mounted from a folder of the run.
	NetworkAllowlist = "allowlist"
)

// LabelRole tells a task's egress proxy from its agent container.
const (
	LabelRole  = "in.trakkar.agent.role"
	RoleEgress = "egress"
)

const (
	// egressMount is where the proxy's sockets are mounted in both containers.
	egressMount = "/trakkar/egress"
	proxySocket = "proxy.sock"
	modelSocket = "model.sock"
	// The agent's tools find the proxy and the pinned model API on loopback
	// ports of their own container, piped to the sockets by egress-forward.
	egressPort = "3128"
	injectPort = "3129"
	// placeholderPrefix starts the per-task secret the agent holds as its model
	// key: shaped like a key so the CLI takes it, worthless outside the task.
	placeholderPrefix = "sk-ant-api03-trakkar-pinned-"
	// DefaultModelHost is refused through the CONNECT proxy while the key is
	// pinned, whatever --model-api-url says.
	DefaultModelHost = "api.anthropic.com"
)

// Network is what a task's container needs to use its network.
type Network struct {
	network string
	env     []string
	dns     []string
	drop    []string // environment names to take out of the agent's container
	mounts  []docker.Mount
	forward []string // egress-forward --forward values; none: run the command as it is
	hosts   string   // the container's /etc/hosts when it is on no network (docker.Spec.HostsFile)
}

// Apply puts the network into spec; with forwards, spec's command runs under
// egress-forward (no entrypoint means the image's, trakkar-worker).
func (tn *Network) Apply(spec *docker.Spec) {
	spec.Network, spec.DNS, spec.HostsFile = tn.network, tn.dns, tn.hosts
	spec.Env = append(withoutEnv(spec.Env, tn.drop), tn.env...)
	spec.Mounts = append(spec.Mounts, tn.mounts...)
	if len(tn.forward) == 0 {
		return
	}
	cmd := spec.Entrypoint
	if len(cmd) == 0 {
		cmd = []string{"trakkar-worker"}
	}
	entry := []string{"trakkar-worker", "egress-forward"}
	for _, f := range tn.forward {
		entry = append(entry, "--forward", f)
	}
	spec.Entrypoint = append(append(entry, "--"), cmd...)
}

// egressDir makes the run's socket folder anew for each container, so nothing
// an earlier container or proxy left there is reused, and hands it to the
// containers' user alone: only this task's proxy and containers mount it.
func (b *Sandbox) egressDir(r Run) (string, error) {
	dir := filepath.Join(r.StateDir, "egress")
	if err := freshDir(dir, 0o700); err != nil {
		return "", fmt.Errorf("egress folder: %w", err)
	}
	uid, gid, err := ParseUser(b.cfg.User)
	if err != nil {
		return "", err
	}
	if os.Geteuid() == 0 && uid != 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", fmt.Errorf("hand egress folder to container user: %w", err)
		}
	}
	return dir, nil
}

// freshDir makes dir anew, whatever was there (a link included, which is
// removed, not followed), so nothing left in it is reused.
func freshDir(dir string, perm os.FileMode) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	if err := os.Mkdir(dir, perm); err != nil {
		return fmt.Errorf("make: %w", err)
	}
	return nil
}

// loopbackHosts is /etc/hosts of a container on no network: its loopback.
const loopbackHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// hostsFile writes the /etc/hosts of the run's next container on no network,
// in a folder made anew each time, as egressDir is: the engine resolves a
// bind mount's source as root, so it must never be a path anyone else could
// have swapped for a link.
func hostsFile(r Run) (string, error) {
	dir := filepath.Join(r.StateDir, "hosts")
	if err := freshDir(dir, 0o755); err != nil {
		return "", fmt.Errorf("hosts folder: %w", err)
	}
	path := filepath.Join(dir, "hosts")
	if err := os.WriteFile(path, []byte(loopbackHosts), 0o644); err != nil {
		return "", fmt.Errorf("write hosts file: %w", err)
	}
	return path, nil
}

// waitSockets waits until the proxy has made its sockets, so the agent's first
// request does not race the proxy's start.
func waitSockets(ctx context.Context, dir string, names []string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := ""
		for _, n := range names {
			if fi, err := os.Lstat(filepath.Join(dir, n)); err != nil || fi.Mode()&os.ModeSocket == 0 {
				missing = n
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("egress proxy made no %s within 30s", missing)
		}
		if err := backoff.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// newSecret is the per-task value the agent shows the key injector.
func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make task secret: %w", err)
	}
	return placeholderPrefix + hex.EncodeToString(b), nil
}

// StartEgress starts the task's egress proxy and has rep follow its refusals
// into the task. Under allowlist the task's container gets no network:
// the proxy, on the egress network, is reached only through its sockets.
// model says whether the container may use the pinned model key: the agent's
// does, a verify container (which runs the repository's code) does not.
func (b *Sandbox) StartEgress(ctx context.Context, rep Reporter, r Run, model bool) (*Network, error) {
	switch b.cfg.Network {
	case "", NetworkOpen:
		return &Network{}, nil
	case NetworkNone:
		hosts, err := hostsFile(r)
		if err != nil {
			return nil, err
		}
		return &Network{network: "none", hosts: hosts}, nil
	}
	name := ContainerName(r)
	// A proxy left by an earlier container of this run (a crash, a fix round)
	// would make the names below collide.
	b.StopEgress(ctx, r.RunID)
	dir, err := b.egressDir(r)
	if err != nil {
		return nil, err
	}
	domains := b.cfg.AllowDomains
	plabels := b.Labels(r)
	plabels[LabelRole] = RoleEgress
	entry := []string{"trakkar-worker", "egress-proxy", "--listen", "unix:" + egressMount + "/" + proxySocket,
		"--allow", strings.Join(domains, ",")}
	var penv []string
	sockets := []string{proxySocket}
	hosts, err := hostsFile(r)
	if err != nil {
		return nil, err
	}
	tn := &Network{
		network: "none",
		hosts:   hosts,
		mounts:  []docker.Mount{{Source: dir, Target: egressMount, ReadOnly: true}},
		forward: []string{"127.0.0.1:" + egressPort + "=" + egressMount + "/" + proxySocket},
	}
	upstream := b.cfg.ModelAPIURL
	if upstream == "" {
		upstream = "https://" + DefaultModelHost
	}
	if b.cfg.PinModelKey {
		// Denied to every container of the task, verify's too: the model API
		// is reached only through the agent's injector.
		u, err := url.Parse(upstream)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("model API URL %q has no host", upstream)
		}
		entry = append(entry, "--deny", strings.Join([]string{DefaultModelHost, u.Hostname()}, ","))
	}
	if b.cfg.PinModelKey && model {
		key, err := b.cfg.ModelKey()
		if err != nil {
			return nil, err
		}
		secret, err := newSecret()
		if err != nil {
			return nil, err
		}
		entry = append(entry, "--inject-listen", "unix:"+egressMount+"/"+modelSocket, "--inject-upstream", upstream, "--inject-header", "x-api-key")
		penv = []string{egress.InjectValueEnv + "=" + key, egress.InjectSecretEnv + "=" + secret}
		sockets = append(sockets, modelSocket)
		tn.forward = append(tn.forward, "127.0.0.1:"+injectPort+"="+egressMount+"/"+modelSocket)
		tn.drop = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL"}
		tn.env = append(tn.env, "ANTHROPIC_API_KEY="+secret, "ANTHROPIC_BASE_URL=http://127.0.0.1:"+injectPort)
	}
	id, err := b.rt.Create(ctx, docker.Spec{
		Name:       name + "-egress",
		Image:      b.cfg.Image,
		Entrypoint: entry,
		Env:        penv,
		User:       b.cfg.User,
		Labels:     plabels,
		Network:    b.cfg.EgressNetwork,
		// The engine's default runtime, not --runtime: the proxy runs only our
		// code, needs the network that gVisor registered with --network=none
		// lacks, and must make sockets the host (and so the agent) can see.
		Mounts:    []docker.Mount{{Source: dir, Target: egressMount}},
		Resources: docker.Resources{MemoryBytes: 256 << 20, NanoCPUs: 5e8, PidsLimit: 128},
	})
	if err != nil {
		return nil, fmt.Errorf("create egress proxy: %w", err)
	}
	if _, err := b.rt.Start(ctx, id); err != nil {
		return nil, fmt.Errorf("start egress proxy: %w", err)
	}
	// The follow ends when StopEgress removes the proxy (or ctx ends).
	rep.FollowEgress(ctx, id)
	if err := waitSockets(ctx, dir, sockets); err != nil {
		return nil, err
	}
	rep.Status("Network: allowlist (%s) through the egress proxy", strings.Join(domains, ", "))
	proxy := "http://127.0.0.1:" + egressPort
	noProxy := "localhost,127.0.0.1"
	tn.env = append(tn.env, "HTTPS_PROXY="+proxy, "HTTP_PROXY="+proxy, "https_proxy="+proxy, "http_proxy="+proxy,
		"NO_PROXY="+noProxy, "no_proxy="+noProxy)
	if b.cfg.PinModelKey && model {
		rep.Status("Model key pinned in the egress proxy; the agent holds a per-task placeholder")
	}
	return tn, nil
}

// StopEgress removes a run's egress proxy, also one left by an earlier process,
// and any task network an older version made: this runner's only, as another
// runner on the engine may hold another attempt of the run.
func (b *Sandbox) StopEgress(ctx context.Context, runID string) {
	if b.cfg.Network != NetworkAllowlist {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cs, err := b.rt.List(cctx, Owned(b.cfg.RunnerID, runID, RoleEgress))
	if err == nil {
		for _, c := range cs {
			_ = b.rt.Stop(cctx, c.ID, time.Second)
			_ = b.rt.Remove(cctx, c.ID)
		}
	}
	nets, err := b.rt.ListNetworks(cctx, Owned(b.cfg.RunnerID, runID, ""))
	if err == nil {
		for _, n := range nets {
			if err := b.rt.RemoveNetwork(cctx, n.ID); err != nil {
				b.log.Warn("remove task network", zap.String("network", n.Name), zap.Error(err))
			}
		}
	}
}

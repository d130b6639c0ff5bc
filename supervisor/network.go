package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/egress"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
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
	// defaultModelHost is refused through the CONNECT proxy while the key is
	// pinned, whatever --model-api-url says.
	defaultModelHost = "api.anthropic.com"
)

// DefaultAllowDomains is what each provider's CLI needs to work.
func DefaultAllowDomains(provider string) []string {
	if provider == ProviderCursor {
		return []string{"api2.cursor.sh", ".cursor.sh", "cursor.com"}
	}
	return []string{"api.anthropic.com"}
}

// taskNetwork is what a task's container needs to use its network.
type taskNetwork struct {
	network string
	env     []string
	dns     []string
	drop    []string // environment names to take out of the agent's container
	mounts  []docker.Mount
	forward []string // egress-forward --forward values; none: run the command as it is
}

// apply puts the network into spec; with forwards, spec's command runs under
// egress-forward (no entrypoint means the image's, trakkar-worker).
func (tn *taskNetwork) apply(spec *docker.Spec) {
	spec.Network, spec.DNS = tn.network, tn.dns
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

// pinnedKey returns the API key to pin, or an error when pinning cannot apply.
func (s *Supervisor) pinnedKey() (string, error) {
	if s.cfg.Provider != ProviderClaude {
		return "", fmt.Errorf("pinning the model key works for claude_code only")
	}
	for _, kv := range s.cfg.ModelEnv {
		if v, ok := strings.CutPrefix(kv, "ANTHROPIC_API_KEY="); ok && v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("pinning the model key needs ANTHROPIC_API_KEY")
}

// egressDir makes the run's socket folder anew for each container, so nothing
// an earlier container or proxy left there is reused, and hands it to the
// containers' user alone: only this task's proxy and containers mount it.
func (s *Supervisor) egressDir(ws *workspace) (string, error) {
	dir := filepath.Join(ws.stateDir, "egress")
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("clear egress folder: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("make egress folder: %w", err)
	}
	uid, gid, err := parseUser(s.cfg.ContainerUser)
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
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

// startEgress starts the task's egress proxy and follows its refusals into the
// task as error events. Under allowlist the task's container gets no network:
// the proxy, on the egress network, is reached only through its sockets.
// model says whether the container may use the pinned model key: the agent's
// does, a verify container (which runs the repository's code) does not.
func (s *Supervisor) startEgress(ctx context.Context, r *run, ws *workspace, model bool) (*taskNetwork, error) {
	switch s.cfg.Network {
	case "", NetworkOpen:
		return &taskNetwork{}, nil
	case NetworkNone:
		return &taskNetwork{network: "none"}, nil
	}
	name := containerName(ws, r)
	// A proxy left by an earlier container of this run (a crash, a fix round)
	// would make the names below collide.
	s.stopEgress(ctx, r.claim.Run.ID)
	dir, err := s.egressDir(ws)
	if err != nil {
		return nil, err
	}
	domains := s.cfg.AllowDomains
	if len(domains) == 0 {
		domains = DefaultAllowDomains(s.cfg.Provider)
	}
	plabels := s.runLabels(r)
	plabels[LabelRole] = RoleEgress
	entry := []string{"trakkar-worker", "egress-proxy", "--listen", "unix:" + egressMount + "/" + proxySocket,
		"--allow", strings.Join(domains, ",")}
	var penv []string
	sockets := []string{proxySocket}
	tn := &taskNetwork{
		network: "none",
		mounts:  []docker.Mount{{Source: dir, Target: egressMount, ReadOnly: true}},
		forward: []string{"127.0.0.1:" + egressPort + "=" + egressMount + "/" + proxySocket},
	}
	upstream := s.cfg.ModelAPIURL
	if upstream == "" {
		upstream = "https://" + defaultModelHost
	}
	if s.cfg.PinModelKey {
		// Denied to every container of the task, verify's too: the model API
		// is reached only through the agent's injector.
		u, err := url.Parse(upstream)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("model API URL %q has no host", upstream)
		}
		entry = append(entry, "--deny", strings.Join([]string{defaultModelHost, u.Hostname()}, ","))
	}
	if s.cfg.PinModelKey && model {
		key, err := s.pinnedKey()
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
	id, err := s.rt.Create(ctx, docker.Spec{
		Name:       name + "-egress",
		Image:      s.cfg.Image,
		Entrypoint: entry,
		Env:        penv,
		User:       s.cfg.ContainerUser,
		Labels:     plabels,
		Network:    s.cfg.EgressNetwork,
		// The engine's default runtime, not --runtime: the proxy runs only our
		// code, needs the network that gVisor registered with --network=none
		// lacks, and must make sockets the host (and so the agent) can see.
		Mounts:    []docker.Mount{{Source: dir, Target: egressMount}},
		Resources: docker.Resources{MemoryBytes: 256 << 20, NanoCPUs: 5e8, PidsLimit: 128},
	})
	if err != nil {
		return nil, fmt.Errorf("create egress proxy: %w", err)
	}
	if _, err := s.rt.Start(ctx, id); err != nil {
		return nil, fmt.Errorf("start egress proxy: %w", err)
	}
	// Ends when stopEgress removes the proxy (or ctx ends); drive joins it.
	r.bg.Go(func() { s.followEgress(ctx, r, id) })
	if err := waitSockets(ctx, dir, sockets); err != nil {
		return nil, err
	}
	s.status(r, "Network: allowlist (%s) through the egress proxy", strings.Join(domains, ", "))
	proxy := "http://127.0.0.1:" + egressPort
	noProxy := "localhost,127.0.0.1"
	tn.env = append(tn.env, "HTTPS_PROXY="+proxy, "HTTP_PROXY="+proxy, "https_proxy="+proxy, "http_proxy="+proxy,
		"NO_PROXY="+noProxy, "no_proxy="+noProxy)
	if s.cfg.PinModelKey && model {
		s.status(r, "Model key pinned in the egress proxy; the agent holds a per-task placeholder")
	}
	return tn, nil
}

// followEgress turns the proxy's refusal lines into task events.
func (s *Supervisor) followEgress(ctx context.Context, r *run, id string) {
	w := newLineWriter(func(line []byte) {
		var b egress.Blocked
		if json.Unmarshal(line, &b) != nil || b.Blocked == "" {
			return
		}
		why := " is not in the allowlist"
		if b.Reason == egress.ReasonPinned {
			why = " is the model API, reachable only through the pinned key"
		}
		s.emit(r, trakkar.EventError, "Network access blocked: "+b.Blocked+why,
			map[string]any{"blocked": b.Blocked, "method": b.Method, "reason": b.Reason})
	})
	_ = s.rt.Logs(ctx, id, true, w, nil)
	w.Close()
}

// stopEgress removes a run's egress proxy, also one left by an earlier process,
// and any task network an older version made.
func (s *Supervisor) stopEgress(ctx context.Context, runID string) {
	if s.cfg.Network != NetworkAllowlist {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cs, err := s.rt.List(cctx, map[string]string{LabelRunID: runID, LabelRole: RoleEgress})
	if err == nil {
		for _, c := range cs {
			_ = s.rt.Stop(cctx, c.ID, time.Second)
			_ = s.rt.Remove(cctx, c.ID)
		}
	}
	nets, err := s.rt.ListNetworks(cctx, map[string]string{LabelRunID: runID})
	if err == nil {
		for _, n := range nets {
			if err := s.rt.RemoveNetwork(cctx, n.ID); err != nil {
				s.log.Warn("remove task network", zap.String("network", n.Name), zap.Error(err))
			}
		}
	}
}

func (s *Supervisor) runLabels(r *run) map[string]string {
	return map[string]string{
		LabelManaged: "true",
		LabelTaskID:  r.claim.Task.ID,
		LabelTaskKey: r.claim.Task.Key,
		LabelRunID:   r.claim.Run.ID,
		LabelRunner:  s.cfg.Runner.ID,
		LabelAttempt: fmt.Sprint(max(r.claim.Run.Attempt, 1)),
	}
}

package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/egress"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// Network policies for task containers.
const (
	NetworkOpen      = "open"      // the engine's default bridge
	NetworkNone      = "none"      // no network at all
	NetworkAllowlist = "allowlist" // an internal network whose only way out is our egress proxy
)

// LabelRole tells a task's egress proxy from its agent container.
const (
	LabelRole  = "in.trakkar.agent.role"
	RoleEgress = "egress"
)

const (
	egressAlias = "egress"
	egressPort  = "3128"
	// unroutableDNS is a TEST-NET address: lookups of outside names from an
	// internal network go nowhere instead of through the host's resolver.
	unroutableDNS = "192.0.2.53"
)

// DefaultAllowDomains is what each provider's CLI needs to work.
func DefaultAllowDomains(provider string) []string {
	if provider == ProviderCursor {
		return []string{"api2.cursor.sh", ".cursor.sh", "cursor.com"}
	}
	return []string{"api.anthropic.com"}
}

// taskNetwork is what the agent container needs to join its network.
type taskNetwork struct {
	network string
	env     []string
	dns     []string
	drop    []string // environment names to take out of the agent's container
}

const (
	injectPort = "3129"
	// keyPlaceholder is what the agent sees as ANTHROPIC_API_KEY when the real
	// key is pinned in the proxy.
	keyPlaceholder = "sk-ant-api03-trakkar-pinned-by-egress-proxy"
)

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

// startEgress creates the task's internal network and its egress proxy, and
// follows the proxy's refusals into the task as error events.
func (s *Supervisor) startEgress(ctx context.Context, r *run, ws *workspace) (*taskNetwork, error) {
	switch s.cfg.Network {
	case "", NetworkOpen:
		return &taskNetwork{}, nil
	case NetworkNone:
		return &taskNetwork{network: "none"}, nil
	}
	name := "trakkar-" + ws.key + "-" + hostgit.Slug(r.claim.Run.ID, 40)
	// A proxy or network left by an earlier container of this run (a crash, a
	// fix round) would make the names below collide.
	s.stopEgress(ctx, r.claim.Run.ID)
	labels := s.runLabels(r)
	netID, err := s.rt.CreateNetwork(ctx, name, true, labels)
	if err != nil {
		return nil, err
	}
	domains := s.cfg.AllowDomains
	if len(domains) == 0 {
		domains = DefaultAllowDomains(s.cfg.Provider)
	}
	plabels := s.runLabels(r)
	plabels[LabelRole] = RoleEgress
	entry := []string{"trakkar-worker", "egress-proxy", "--listen", ":" + egressPort, "--allow", strings.Join(domains, ",")}
	var penv []string
	tn := &taskNetwork{network: name, dns: []string{unroutableDNS}}
	if s.cfg.PinModelKey {
		key, err := s.pinnedKey()
		if err != nil {
			return nil, err
		}
		upstream := s.cfg.ModelAPIURL
		if upstream == "" {
			upstream = "https://api.anthropic.com"
		}
		entry = append(entry, "--inject-listen", ":"+injectPort, "--inject-upstream", upstream, "--inject-header", "x-api-key")
		penv = []string{egress.InjectValueEnv + "=" + key}
		tn.drop = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL"}
		tn.env = append(tn.env, "ANTHROPIC_API_KEY="+keyPlaceholder,
			"ANTHROPIC_BASE_URL=http://"+egressAlias+":"+injectPort)
	}
	id, err := s.rt.Create(ctx, docker.Spec{
		Name:       name + "-egress",
		Image:      s.cfg.Image,
		Entrypoint: entry,
		Env:        penv,
		User:       s.cfg.ContainerUser,
		Labels:     plabels,
		Network:    s.cfg.EgressNetwork,
		Runtime:    s.cfg.Runtime,
		Resources:  docker.Resources{MemoryBytes: 256 << 20, NanoCPUs: 5e8, PidsLimit: 128},
	})
	if err != nil {
		return nil, fmt.Errorf("create egress proxy: %w", err)
	}
	if err := s.rt.Connect(ctx, netID, id, []string{egressAlias}); err != nil {
		return nil, err
	}
	if _, err := s.rt.Start(ctx, id); err != nil {
		return nil, fmt.Errorf("start egress proxy: %w", err)
	}
	go s.followEgress(ctx, r, id)
	s.status(r, "Network: allowlist (%s) through the egress proxy", strings.Join(domains, ", "))
	proxy := "http://" + egressAlias + ":" + egressPort
	// The pinned model API is reached directly, not through the CONNECT proxy.
	noProxy := "localhost,127.0.0.1," + egressAlias
	tn.env = append(tn.env, "HTTPS_PROXY="+proxy, "HTTP_PROXY="+proxy, "https_proxy="+proxy, "http_proxy="+proxy,
		"NO_PROXY="+noProxy, "no_proxy="+noProxy)
	if s.cfg.PinModelKey {
		s.status(r, "Model key pinned in the egress proxy; the agent holds a placeholder")
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
		s.emit(r, trakkar.EventError, "Network access blocked: "+b.Blocked+" is not in the allowlist",
			map[string]any{"blocked": b.Blocked, "method": b.Method})
	})
	_ = s.rt.Logs(ctx, id, true, w, nil)
	w.Close()
}

// stopEgress removes a run's egress proxy and network, also ones left by an
// earlier process.
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

package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/trakkar/trakkar-agent/internal/egress"
	"github.com/trakkar/trakkar-agent/internal/sandbox"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// The sandbox's names that the supervisor's callers and tests know.
const (
	LabelManaged = sandbox.LabelManaged
	LabelTaskID  = sandbox.LabelTaskID
	LabelTaskKey = sandbox.LabelTaskKey
	LabelRunID   = sandbox.LabelRunID
	LabelRunner  = sandbox.LabelRunner
	LabelAttempt = sandbox.LabelAttempt
	LabelRole    = sandbox.LabelRole
	RoleEgress   = sandbox.RoleEgress
	RoleVerify   = sandbox.RoleVerify

	LabelCacheRepo = sandbox.LabelCacheRepo
	LabelCacheTool = sandbox.LabelCacheTool
	LabelCacheRole = sandbox.LabelCacheRole
	LabelShareRepo = sandbox.LabelShareRepo
	CacheAgent     = sandbox.CacheAgent
	CacheVerify    = sandbox.CacheVerify

	NetworkOpen      = sandbox.NetworkOpen
	NetworkNone      = sandbox.NetworkNone
	NetworkAllowlist = sandbox.NetworkAllowlist

	DefaultShare = sandbox.DefaultShare
)

// CacheVolumeName is the name of one task's cache volume (sandbox.CacheVolumeName).
func CacheVolumeName(repo, task, role, tool string) string {
	return sandbox.CacheVolumeName(repo, task, role, tool)
}

// CacheRuntime is what dropping cache volumes needs from the container runtime.
type CacheRuntime = sandbox.CacheRuntime

// PruneCaches removes repo's dependency cache volumes and leftover share
// volumes (sandbox.PruneCaches).
func PruneCaches(ctx context.Context, rt CacheRuntime, repo string) (int, error) {
	return sandbox.PruneCaches(ctx, rt, repo)
}

// DefaultAllowDomains is what each provider's CLI needs to work.
func DefaultAllowDomains(provider string) []string {
	if provider == ProviderCursor {
		return []string{"api2.cursor.sh", ".cursor.sh", "cursor.com"}
	}
	return []string{"api.anthropic.com"}
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

// box is the container side of the runner, from the resolved configuration.
func (s *Supervisor) box() *sandbox.Sandbox {
	domains := s.cfg.AllowDomains
	if len(domains) == 0 {
		domains = DefaultAllowDomains(s.cfg.Provider)
	}
	return sandbox.New(sandbox.Config{
		Repo:             s.cfg.Repo,
		Image:            s.cfg.Image,
		User:             s.cfg.ContainerUser,
		Runtime:          s.cfg.Runtime,
		RunnerID:         s.cfg.Runner.ID,
		ModelEnv:         s.cfg.ModelEnv,
		Network:          s.cfg.Network,
		EgressNetwork:    s.cfg.EgressNetwork,
		AllowDomains:     domains,
		ModelAPIURL:      s.cfg.ModelAPIURL,
		PinModelKey:      s.cfg.PinModelKey,
		ModelKey:         s.pinnedKey,
		Resources:        s.cfg.Resources,
		LogMaxSize:       s.cfg.LogMaxSize,
		DependencyCaches: s.cfg.DependencyCaches,
		Share:            s.cfg.Share,
		WorktreeFolder:   WorktreeFolder,
	}, s.rt, s.log)
}

// sandboxRun describes the run and its workspace to the sandbox.
func sandboxRun(r *run, ws *workspace) sandbox.Run {
	return sandbox.Run{
		TaskID:   r.claim.Task.ID,
		TaskKey:  r.claim.Task.Key,
		RunID:    r.claim.Run.ID,
		Attempt:  r.claim.Run.Attempt,
		Folder:   ws.key,
		StateDir: ws.stateDir,
		Worktree: ws.wt.Path,
		InDir:    ws.inDir,
		OutDir:   ws.outDir,
		AgentDir: ws.agentDir,
		GitDir:   ws.gitDir,
		Scratch:  ws.scratch,
		Log:      r.log,
	}
}

// sandboxReporter reports what the sandbox sets up for a run into its task.
type sandboxReporter struct {
	s *Supervisor
	r *run
}

func (p sandboxReporter) Status(format string, args ...any) { p.r.status(format, args...) }

// FollowEgress follows the proxy's refusals; drive joins the follower
// before the run's last events go.
func (p sandboxReporter) FollowEgress(ctx context.Context, id string) {
	p.r.bg.Go(func() { p.s.followEgress(ctx, p.r, id) })
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
		r.emit(trakkar.EventError, "Network access blocked: "+b.Blocked+why,
			map[string]any{"blocked": b.Blocked, "method": b.Method, "reason": b.Reason})
	})
	_ = s.rt.Logs(ctx, id, true, w, nil)
	w.Close()
}

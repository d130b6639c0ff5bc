// Package sandbox turns one run of a task into a container with its
// surroundings: the container spec (mounts, environment, limits), the shared
// dependency folders, the dependency caches, the egress proxy and network
// policy, the verify overlay, and the cleanup after a container: stop the
// proxy, release the volumes, clear the unsafe modes it left on the host.
//
// A run's description goes in (Run), a ready docker.Spec comes out. The names
// of the containers, volumes and networks, and their labels, are what a
// restarted supervisor's recovery and prune find them by: they must not
// change.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// Runtime is the part of the container runtime the sandbox drives (the
// supervisor's Runtime documents the contract).
type Runtime interface {
	Create(ctx context.Context, s docker.Spec) (string, error)
	Start(ctx context.Context, id string) (<-chan docker.WaitResult, error)
	Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Stop(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
	ListNetworks(ctx context.Context, labels map[string]string) ([]docker.Network, error)
	RemoveNetwork(ctx context.Context, id string) error
	RemoveVolume(ctx context.Context, name string) error
}

// Reporter is where a run's sandbox tells the task what it set up.
type Reporter interface {
	// Status sends a status line to the task.
	Status(format string, args ...any)
	// FollowEgress follows the started egress proxy's refusals into the task
	// in the background, until the proxy is removed or ctx ends.
	FollowEgress(ctx context.Context, proxyID string)
}

// Config is what the sandbox needs of the runner's configuration.
type Config struct {
	Repo          string // the user's repository (main checkout)
	Image         string
	User          string // uid:gid the task's containers run as
	Runtime       string // OCI runtime of task containers; "" → the engine's default
	RunnerID      string
	ModelEnv      []string // KEY=VALUE model credentials
	Network       string   // NetworkOpen, NetworkNone or NetworkAllowlist
	EgressNetwork string   // where the egress proxy reaches out from
	AllowDomains  []string // the allowlist, defaults already applied
	ModelAPIURL   string
	PinModelKey   bool
	// ModelKey returns the model API key to pin in the proxy, or why pinning
	// cannot apply; asked only when a pinned container starts.
	ModelKey         func() (string, error)
	Resources        docker.Resources
	LogMaxSize       string
	DependencyCaches bool
	Share            []string // nil → DefaultShare when the main checkout has it
	WorktreeFolder   string   // the repository's folder of task worktrees: never shared
}

// Run describes one run of one task: who it is and where its host folders are.
type Run struct {
	TaskID   string
	TaskKey  string
	RunID    string
	Attempt  int
	Folder   string // the task's folder-safe key
	StateDir string // per-task state, kept across runs
	Worktree string
	InDir    string
	OutDir   string
	AgentDir string
	GitDir   string // the agent's disposable repository
	Scratch  bool   // GitDir is ready to mount
	Log      *zap.Logger
}

// Sandbox builds and cleans up the containers of task runs.
type Sandbox struct {
	cfg Config
	rt  Runtime
	log *zap.Logger
}

// New returns a sandbox; rt may be nil when no container is ever made.
func New(cfg Config, rt Runtime, log *zap.Logger) *Sandbox {
	if log == nil {
		log = zap.NewNop()
	}
	return &Sandbox{cfg: cfg, rt: rt, log: log}
}

// Labels put on every container the supervisor creates, so a restarted
// supervisor can find, reattach to or reap them.
const (
	LabelManaged = "in.trakkar.agent.managed"
	LabelTaskID  = "in.trakkar.agent.task-id"
	LabelTaskKey = "in.trakkar.agent.task-key"
	LabelRunID   = "in.trakkar.agent.run-id"
	LabelRunner  = "in.trakkar.agent.runner-id"
	LabelAttempt = "in.trakkar.agent.attempt"
)

// Owned selects one runner's Docker objects of one run, of role when it is
// not empty. Runners sharing an engine may hold different attempts of a run,
// and each removes or follows only its own: every lookup by run goes
// through here.
func Owned(runner, runID, role string) map[string]string {
	labels := map[string]string{LabelRunID: runID, LabelRunner: runner}
	if role != "" {
		labels[LabelRole] = role
	}
	return labels
}

// Labels are the labels of the run's containers.
func (b *Sandbox) Labels(r Run) map[string]string {
	return map[string]string{
		LabelManaged: "true",
		LabelTaskID:  r.TaskID,
		LabelTaskKey: r.TaskKey,
		LabelRunID:   r.RunID,
		LabelRunner:  b.cfg.RunnerID,
		LabelAttempt: fmt.Sprint(max(r.Attempt, 1)),
	}
}

// runSlug names one attempt of one run of one task in Docker object names:
// the task folder, the run id and, from the second attempt on, the attempt,
// cut so a name stays within Docker's limits. Runners sharing an engine (a
// fleet on one host, or two clones) may hold different attempts of one run:
// the container of a lost attempt 1 must not block attempt 2's name, and
// the runner of attempt 2 must not remove it — that is its owner's job.
func runSlug(r Run) string {
	s := r.Folder + "-" + hostgit.Slug(r.RunID, 40)
	if r.Attempt > 1 {
		s += "-a" + strconv.Itoa(r.Attempt)
	}
	return s
}

// ContainerName is the name of a run's agent container; its verify and egress
// containers add a suffix to it.
func ContainerName(r Run) string {
	return "trakkar-" + runSlug(r)
}

// ParseUser splits "uid:gid".
func ParseUser(u string) (int, int, error) {
	a, b, ok := strings.Cut(u, ":")
	uid, err1 := strconv.Atoi(a)
	gid, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("container user %q is not uid:gid", u)
	}
	return uid, gid, nil
}

// Package supervisor claims delegated Trakkar runs and drives each through its
// lifecycle: workspace, container, progress, publish, completion.
package supervisor

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
)

// Publish modes.
const (
	PublishPR     = "pr"
	PublishBranch = "branch"
	PublishLocal  = "local"
)

// Providers.
const (
	ProviderClaude = "claude_code"
	ProviderCursor = "cursor"
)

// DefaultMaxWorkspaceMB is the CLI's default --max-workspace-mb (10 GiB).
const DefaultMaxWorkspaceMB = 10240

// DefaultConcurrency applies when neither the flag nor the agent sets one.
const DefaultConcurrency = 6

// Config is the supervisor's typed configuration, built by the CLI.
type Config struct {
	Repo           string        // top level of the user's checkout
	Remote         string        // remote to fetch from and push to, "origin"
	Provider       string        // "" → the agent's setting → claude_code
	Interval       time.Duration // pause between polls when the server answers at once
	PollWait       time.Duration // long-poll wait per request (0..30s)
	VerifyTimeout  time.Duration
	MaxConcurrency int // 0 → the agent's setting → DefaultConcurrency
	Once           bool
	DryRun         bool
	Image          string // worker image; "" → default for the provider
	Publish        string
	ForgeRepo      forge.Repo // owner/name for PRs, derived from the remote URL
	GitToken       string     // used for https pushes and the forge; never enters a container
	Runner         RunnerInfo
	ContainerUser  string   // uid:gid the agent runs as
	ModelEnv       []string // KEY=VALUE model credentials, the only secrets a container gets
	Secrets        []string // every secret known to the supervisor, for redaction
	StopGrace      time.Duration
	Resources      docker.Resources
	WorktreeRoot   string // WorktreeRoot(Repo)
	Policy         importpolicy.Options
	MinFreeBytes   uint64   // refuse to create a workspace with less free disk than this
	Network        string   // open (default), none or allowlist
	AllowDomains   []string // allowlist; empty → DefaultAllowDomains(provider)
	EgressNetwork  string   // where the egress proxy reaches out from; "" → the default bridge
	Runtime        string   // OCI runtime for task containers, e.g. runsc; "" → the engine's default
	NoAgentGit     bool     // skip the agent's disposable repository (saves hashing a huge tree every run)
	LogMaxSize     string   // rotation size of an agent container's log; "" → docker.LogMaxSize (tests shrink it)
	// PinModelKey (allowlist, claude_code, ANTHROPIC_API_KEY) keeps the real key
	// in the egress proxy, which injects it into every request to ModelAPIURL;
	// the agent's container gets a placeholder.
	PinModelKey bool
	ModelAPIURL string // default https://api.anthropic.com

	// EventRetryMax caps the wait between retries of event delivery while
	// Trakkar is unreachable (0 → 30s). Delivery itself has no time limit.
	EventRetryMax time.Duration

	// VerifyRetries is how many times a failed verify command sends the agent
	// back to fix it (the CLI's default is 2; 0 means no fix rounds).
	VerifyRetries int
	// Share lists folders of the main checkout (relative paths, e.g.
	// node_modules) that task containers see at the same place under the
	// workspace, read-through with a private writable layer per task. nil means
	// DefaultShare when the main checkout has it; an empty list shares nothing.
	Share []string
	// DependencyCaches mounts package manager cache volumes into task
	// containers: each task's own, and separate ones for its verify command.
	DependencyCaches bool
	// MaxWorkspaceMB caps, in MiB, what a task's container can write on the host
	// (worktree, state, agent git, out): a watchdog stops the container past it
	// and the run fails. 0 means no cap; the CLI's default is DefaultMaxWorkspaceMB.
	MaxWorkspaceMB int64
}

// RunnerInfo identifies this runner to Trakkar.
type RunnerInfo struct {
	ID, Hostname, Version string
}

// DefaultImage is the worker image used for a provider when --image is not given.
func DefaultImage(provider string) string {
	switch provider {
	case ProviderCursor:
		return "trakkar-agent/worker-cursor:latest"
	default:
		return "trakkar-agent/worker-claude-code:latest"
	}
}

// ValidProvider reports whether p names a supported agent provider.
func ValidProvider(p string) bool { return p == ProviderClaude || p == ProviderCursor }

func (c *Config) validate() error {
	var errs []error
	if c.Repo == "" {
		errs = append(errs, errors.New("repository path is empty"))
	}
	if c.Provider != "" && !ValidProvider(c.Provider) {
		errs = append(errs, fmt.Errorf("unknown provider %q", c.Provider))
	}
	switch c.Publish {
	case PublishPR, PublishBranch, PublishLocal:
	default:
		errs = append(errs, fmt.Errorf("unknown publish mode %q", c.Publish))
	}
	if c.ContainerUser == "" {
		errs = append(errs, errors.New("container user is empty"))
	}
	switch c.Network {
	case "", NetworkOpen, NetworkNone, NetworkAllowlist:
	default:
		errs = append(errs, fmt.Errorf("unknown network policy %q", c.Network))
	}
	for _, p := range c.Share {
		if err := checkSharePath(p); err != nil {
			errs = append(errs, err)
		}
	}
	if c.PinModelKey && c.Network != NetworkAllowlist {
		errs = append(errs, errors.New("pinning the model key needs the allowlist network policy"))
	}
	if c.Interval < 0 || c.MaxConcurrency < 0 || c.VerifyTimeout < 0 || c.PollWait < 0 || c.VerifyRetries < 0 ||
		c.MaxWorkspaceMB < 0 || c.EventRetryMax < 0 {
		errs = append(errs, errors.New("negative durations or counts are not allowed"))
	}
	return errors.Join(errs...)
}

func (c *Config) withDefaults() {
	if c.Remote == "" {
		c.Remote = "origin"
	}
	if c.Interval == 0 {
		c.Interval = 15 * time.Second
	}
	if c.PollWait > 30*time.Second {
		c.PollWait = 30 * time.Second
	}
	if c.VerifyTimeout == 0 {
		c.VerifyTimeout = DefaultVerifyTimeout
	}
	if c.StopGrace == 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.Publish == "" {
		c.Publish = PublishPR
	}
}

// WorktreeFolder is the folder in a repository that holds task worktrees and state.
const WorktreeFolder = ".trakkar-worktrees"

// WorktreeExclude is the info/exclude line that keeps WorktreeFolder out of
// the repository's status.
const WorktreeExclude = "/" + WorktreeFolder + "/"

// WorktreeRoot is the folder of repo that holds its task worktrees and state.
func WorktreeRoot(repo string) string { return filepath.Join(repo, WorktreeFolder) }

// InsideWorktrees reports whether path lies in a task worktree folder. Such a
// tree is agent-written: the runner never discovers a repository there.
func InsideWorktrees(path string) bool {
	for _, part := range strings.Split(filepath.ToSlash(filepath.Clean(path)), "/") {
		if part == WorktreeFolder {
			return true
		}
	}
	return false
}

// Package supervisor claims delegated Trakkar runs and drives each through its
// lifecycle: workspace, container, progress, publish, completion.
package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/egress"
	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
	"github.com/trakkar/trakkar-agent/internal/sandbox"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
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

// DefaultVerifyTimeout bounds the verify command when Config.VerifyTimeout is 0.
const DefaultVerifyTimeout = 30 * time.Minute

// Defaults is the configuration when no option says otherwise: the CLI's flags
// show these values, and New fills the fields whose zero value means "default"
// from them. Provider, Image and MaxConcurrency are settled by Resolve.
func Defaults() Config {
	return Config{
		Remote:        "origin",
		Interval:      15 * time.Second,
		PollWait:      25 * time.Second,
		VerifyTimeout: DefaultVerifyTimeout,
		VerifyRetries: 2,
		Publish:       PublishPR,
		ContainerUser: defaultContainerUser(),
		StopGrace:     10 * time.Second,
		Resources:     docker.Resources{MemoryBytes: 4096 << 20, NanoCPUs: 2e9, PidsLimit: 1024},
		Policy: importpolicy.Options{
			MaxFileBytes: importpolicy.DefaultMaxFileBytes,
			MaxFiles:     importpolicy.DefaultMaxFiles,
		},
		MinFreeBytes:     1024 << 20,
		MaxWorkspaceMB:   DefaultMaxWorkspaceMB,
		Network:          NetworkOpen,
		ModelAPIURL:      "https://" + sandbox.DefaultModelHost,
		DependencyCaches: true,
	}
}

// defaultContainerUser is the caller's uid:gid, or 1000:1000 for root: the
// agent never runs as root.
func defaultContainerUser() string {
	if os.Geteuid() == 0 {
		return "1000:1000"
	}
	return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
}

// Config is the supervisor's typed configuration, built by the CLI.
type Config struct {
	Repo           string        // top level of the user's checkout
	Remote         string        // remote to fetch from and push to, "origin"
	Provider       string        // "" → the agent's setting → claude_code
	Interval       time.Duration // pause between polls when the server answers at once
	PollWait       time.Duration // long-poll wait per request (0..30s)
	VerifyTimeout  time.Duration // --timeout: bounds the verify command only; the agent has no timer
	MaxConcurrency int           // 0 → the agent's setting → DefaultConcurrency
	MaxStarting    int           // runs set up at once (claimed, container not started); 0 → DefaultMaxStarting()
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
	MinFreeBytes   int64    // refuse to create a workspace with less free disk than this
	Network        string   // open (default), none or allowlist
	AllowDomains   []string // allowlist; empty → DefaultAllowDomains(provider)
	EgressNetwork  string   // where the egress proxy reaches out from; "" → the default bridge
	Runtime        string   // OCI runtime for task containers, e.g. runsc; "" → the engine's default
	NoAgentGit     bool     // skip the agent's disposable repository
	LogMaxSize     string   // rotation size of an agent container's log; "" → docker.LogMaxSize (tests shrink it)
	// PinModelKey (allowlist, claude_code, ANTHROPIC_API_KEY) keeps the real key
	// in the egress proxy, which injects it into every request to ModelAPIURL;
	// the agent's container gets a placeholder.
	PinModelKey bool
	ModelAPIURL string // default https://api.anthropic.com

	// FetchShare is how long after a fetch of the remote started a claim may
	// still use it rather than fetch again (0 → 500ms): a burst of claims
	// shares one fetch.
	FetchShare time.Duration

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

// RunnerInfo identifies this runner to Trakkar: in a fleet, Hostname and
// Clone say which machine and which repository clone holds a run.
type RunnerInfo struct {
	ID, Hostname, Version string
	Clone                 string // the repository this runner works on
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

// Validate checks every value a user can set and returns one error per bad
// value (joined; one per line), each naming the CLI option that sets it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Repo == "" {
		bad("repository path is empty")
	}
	if c.Provider != "" && !ValidProvider(c.Provider) {
		bad("unknown provider %q: use claude_code or cursor", c.Provider)
	}
	switch c.Publish {
	case PublishPR, PublishBranch, PublishLocal:
	default:
		bad("unknown --publish %q: use pr, branch or local", c.Publish)
	}
	if u, g, ok := strings.Cut(c.ContainerUser, ":"); !ok || u == "0" || g == "0" || !numeric(u) || !numeric(g) {
		bad("--container-user must be a numeric non-root uid:gid (got %q)", c.ContainerUser)
	}
	for _, n := range c.limits() {
		switch {
		case n.value < 0:
			bad("%s must not be negative (got %g)", n.option, n.value)
		case n.value == 0 && !n.zeroOK:
			bad("%s must not be 0%s", n.option, n.zeroHint)
		case n.value != 0 && n.value < n.min:
			bad("%s must be at least %g (got %g)", n.option, n.min, n.value)
		case n.max > 0 && n.value > n.max:
			bad("%s must be at most %g (got %g)", n.option, n.max, n.value)
		}
	}
	if c.Image != "" {
		if err := docker.CheckImageRef(c.Image); err != nil {
			bad("--image %q is %v", c.Image, err)
		}
	}
	switch c.Network {
	case "", NetworkOpen, NetworkNone, NetworkAllowlist:
	default:
		bad("unknown --network %q: use open, none or allowlist", c.Network)
	}
	if _, err := egress.NewAllowlist(c.AllowDomains); err != nil {
		bad("--allow-domain: %w", err)
	}
	if c.PinModelKey && c.Network != NetworkAllowlist {
		bad("--pin-model-key needs --network allowlist")
	}
	for _, p := range c.Share {
		if err := sandbox.CheckSharePath(p, WorktreeFolder); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func numeric(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Resolve settles what the agent's settings decide: the provider (the
// configured one, else the agent's, else claude_code) and the worker image for
// it. It changes nothing in a configuration already resolved.
func (c *Config) Resolve(agent trakkar.Agent) error {
	if c.Provider == "" {
		c.Provider = agent.Provider
		if c.Provider == "" {
			c.Provider = ProviderClaude
		}
		if !ValidProvider(c.Provider) {
			return fmt.Errorf("the agent's provider %q is not supported: pass --provider claude_code or cursor", c.Provider)
		}
	}
	if c.Image == "" {
		c.Image = DefaultImage(c.Provider)
	}
	if c.MaxConcurrency == 0 && agent.MaxConcurrency != nil && *agent.MaxConcurrency > MaxConcurrencyLimit {
		return fmt.Errorf("the agent's max concurrency %d is more than %d: pass --max-concurrency", *agent.MaxConcurrency, MaxConcurrencyLimit)
	}
	return nil
}

// withDefaults fills, from Defaults, the fields a library caller may leave
// zero (Validate refuses them at 0). For the others zero has a meaning
// (VerifyRetries, PollWait, MaxWorkspaceMB, MinFreeBytes…) and is kept.
func (c *Config) withDefaults() {
	d := Defaults()
	if c.Remote == "" {
		c.Remote = d.Remote
	}
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.VerifyTimeout == 0 {
		c.VerifyTimeout = d.VerifyTimeout
	}
	if c.StopGrace == 0 {
		c.StopGrace = d.StopGrace
	}
	// Zero limits are refused from the CLI; a library caller gets the defaults.
	if c.Resources.MemoryBytes == 0 {
		c.Resources.MemoryBytes = d.Resources.MemoryBytes
	}
	if c.Resources.NanoCPUs == 0 {
		c.Resources.NanoCPUs = d.Resources.NanoCPUs
	}
	if c.Resources.PidsLimit == 0 {
		c.Resources.PidsLimit = d.Resources.PidsLimit
	}
	if c.Policy.MaxFileBytes == 0 {
		c.Policy.MaxFileBytes = d.Policy.MaxFileBytes
	}
	if c.Policy.MaxFiles == 0 {
		c.Policy.MaxFiles = d.Policy.MaxFiles
	}
	if c.Publish == "" {
		c.Publish = d.Publish
	}
	if c.WorktreeRoot == "" {
		c.WorktreeRoot = WorktreeRoot(c.Repo)
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

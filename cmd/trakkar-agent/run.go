package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/egress"
	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "token", EnvVars: []string{"TRAKKAR_TOKEN"}, Usage: "Trakkar agent token (trk_agent_…); required"},
		&cli.StringFlag{Name: "api-url", EnvVars: []string{"TRAKKAR_API_URL"}, Value: "https://api.trakkar.in", Usage: "Trakkar API base URL"},
		&cli.StringFlag{Name: "provider", EnvVars: []string{"TRAKKAR_PROVIDER"}, Usage: "agent CLI: claude_code or cursor (default: the agent's setting, else claude_code)"},
		&cli.IntFlag{Name: "interval", Value: 15, Usage: "seconds between polls when Trakkar answers at once"},
		&cli.IntFlag{Name: "timeout", Value: 1800, Usage: "seconds the verify command may run (the agent itself has no timer)"},
		&cli.IntFlag{Name: "verify-retries", Value: 2, Usage: "times a failed verify command sends the agent back to fix it"},
		&cli.StringSliceFlag{Name: "share", Usage: "folder of the main checkout (relative) that tasks see read-through with a private writable layer (repeatable; default node_modules when present; none to share nothing)"},
		&cli.BoolFlag{Name: "no-caches", Usage: "do not mount the per-task package manager cache volumes into task containers"},
		&cli.IntFlag{Name: "max-concurrency", Usage: "tasks worked at once (default: the agent's setting, else 6)"},
		&cli.BoolFlag{Name: "once", Usage: "poll once, finish the claimed work, exit"},
		&cli.BoolFlag{Name: "dry-run", Usage: "claim and read tasks only: no container, no push, no PR (the run is re-queued when its lease lapses)"},
		&cli.StringFlag{Name: "repo", Usage: "the git repository to work on (default: the one containing the working directory)"},
		&cli.StringFlag{Name: "image", EnvVars: []string{"TRAKKAR_IMAGE"}, Usage: "worker image (default: trakkar-agent/worker-<provider>:latest)"},
		&cli.StringFlag{Name: "publish", Value: supervisor.PublishPR, Usage: "pr: push and open a pull request; branch: push only; local: commit on a local branch"},
		&cli.StringFlag{Name: "remote", Value: "origin", Usage: "git remote to fetch from and push to"},
		&cli.StringFlag{Name: "github-api-url", EnvVars: []string{"GITHUB_API_URL"}, Usage: "GitHub REST API base (default: derived from the remote; set for GitHub Enterprise)"},
		&cli.StringFlag{Name: "container-user", Usage: "uid:gid the agent runs as (default: your uid:gid; 1000:1000 when running as root)"},
		&cli.Int64Flag{Name: "memory-mb", Value: 4096, Usage: "memory limit per task container, MiB (no swap)"},
		&cli.Float64Flag{Name: "cpus", Value: 2, Usage: "CPU limit per task container"},
		&cli.Int64Flag{Name: "pids-limit", Value: 1024, Usage: "process limit per task container"},
		&cli.IntFlag{Name: "stop-grace", Value: 10, Usage: "seconds between SIGTERM and SIGKILL when stopping an agent"},
		&cli.IntFlag{Name: "poll-wait", Value: 25, Usage: "long-poll wait in seconds (0-30)"},
		&cli.StringSliceFlag{Name: "protected-path", Usage: "paths the agent may not change, as globs with ** (repeatable; default .github/**, .gitlab-ci.yml, .devcontainer/**, .vscode/tasks.json, .envrc, .husky/**; a symlink at a parent of one is refused too)"},
		&cli.BoolFlag{Name: "allow-protected", Usage: "let the agent change protected paths"},
		&cli.IntFlag{Name: "max-file-mb", Value: 20, Usage: "largest file the agent may add, MiB"},
		&cli.IntFlag{Name: "max-files", Value: 2000, Usage: "most paths one change may touch"},
		&cli.StringFlag{Name: "network", Value: supervisor.NetworkOpen, Usage: "task network: open, none, or allowlist (only --allow-domain, through an egress proxy)"},
		&cli.StringSliceFlag{Name: "allow-domain", Usage: "domain reachable under --network allowlist (repeatable; .example.com allows subdomains; default: what the provider needs)"},
		&cli.BoolFlag{Name: "pin-model-key", Usage: "under --network allowlist, keep ANTHROPIC_API_KEY in the egress proxy, which injects it; the agent sees a placeholder"},
		&cli.StringFlag{Name: "model-api-url", Value: "https://api.anthropic.com", Usage: "model API the pinned key is sent to"},
		&cli.StringFlag{Name: "egress-network", Usage: "Docker network the egress proxy reaches out from (default: the engine's bridge)"},
		&cli.StringFlag{Name: "runtime", Usage: "OCI runtime for task containers, e.g. runsc (gVisor); refused if the engine lacks it"},
		&cli.BoolFlag{Name: "no-agent-git", Usage: "give the agent no disposable git repository (skips hashing the worktree before every run)"},
		&cli.IntFlag{Name: "min-free-mb", Value: 1024, Usage: "refuse to create a workspace with less free disk, MiB"},
		&cli.IntFlag{Name: "max-workspace-mb", EnvVars: []string{"TRAKKAR_MAX_WORKSPACE_MB"}, Value: supervisor.DefaultMaxWorkspaceMB,
			Usage: "stop a task's container once what it can write on the host (its worktree and state folders) passes this, and fail the run, MiB; 0 means no cap"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"TRAKKAR_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"},
	}
}

// config turns flags and environment into a supervisor configuration, rejecting
// bad input before anything touches the network.
type setup struct {
	cfg      supervisor.Config
	apiURL   string
	token    string
	ghAPIURL string
}

func checkFlags(c *cli.Context) (*setup, error) {
	st := &setup{token: strings.TrimSpace(c.String("token")), apiURL: c.String("api-url")}
	if st.token == "" {
		return nil, badInput("missing Trakkar token: pass --token or set TRAKKAR_TOKEN (Trakkar → agent settings → runner token)")
	}
	if p := c.String("provider"); p != "" && !supervisor.ValidProvider(p) {
		return nil, badInput("unknown provider %q: use claude_code or cursor", p)
	}
	for _, n := range []string{"interval", "timeout", "max-concurrency", "stop-grace", "poll-wait", "max-file-mb", "max-files", "min-free-mb", "max-workspace-mb"} {
		if c.Int(n) < 0 {
			return nil, badInput("--%s must not be negative (got %d)", n, c.Int(n))
		}
	}
	if c.Int64("memory-mb") < 0 || c.Float64("cpus") < 0 || c.Int64("pids-limit") < 0 {
		return nil, badInput("--memory-mb, --cpus and --pids-limit must not be negative")
	}
	if c.Int("poll-wait") > 30 {
		return nil, badInput("--poll-wait must be between 0 and 30 seconds")
	}
	pub := c.String("publish")
	switch pub {
	case supervisor.PublishPR, supervisor.PublishBranch, supervisor.PublishLocal:
	default:
		return nil, badInput("unknown --publish %q: use pr, branch or local", pub)
	}
	user := c.String("container-user")
	if user == "" {
		user = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
		if os.Geteuid() == 0 {
			user = "1000:1000"
		}
	} else if u, g, ok := strings.Cut(user, ":"); !ok || u == "0" || g == "0" || !numeric(u) || !numeric(g) {
		return nil, badInput("--container-user must be a numeric non-root uid:gid (got %q)", user)
	}
	st.cfg = supervisor.Config{
		Provider:       c.String("provider"),
		Interval:       time.Duration(c.Int("interval")) * time.Second,
		PollWait:       time.Duration(c.Int("poll-wait")) * time.Second,
		VerifyTimeout:  time.Duration(c.Int("timeout")) * time.Second,
		MaxConcurrency: c.Int("max-concurrency"),
		Once:           c.Bool("once"),
		DryRun:         c.Bool("dry-run"),
		Image:          c.String("image"),
		Publish:        pub,
		Remote:         c.String("remote"),
		ContainerUser:  user,
		StopGrace:      time.Duration(c.Int("stop-grace")) * time.Second,
		Resources: docker.Resources{
			MemoryBytes: c.Int64("memory-mb") << 20,
			NanoCPUs:    int64(c.Float64("cpus") * 1e9),
			PidsLimit:   c.Int64("pids-limit"),
		},
	}
	st.cfg.Policy = importpolicy.Options{
		MaxFileBytes:   int64(c.Int("max-file-mb")) << 20,
		MaxFiles:       c.Int("max-files"),
		Protected:      c.StringSlice("protected-path"),
		AllowProtected: c.Bool("allow-protected"),
	}
	st.cfg.MinFreeBytes = uint64(c.Int("min-free-mb")) << 20
	st.cfg.MaxWorkspaceMB = int64(c.Int("max-workspace-mb"))
	switch n := c.String("network"); n {
	case supervisor.NetworkOpen, supervisor.NetworkNone, supervisor.NetworkAllowlist:
		st.cfg.Network = n
	default:
		return nil, badInput("unknown --network %q: use open, none or allowlist", n)
	}
	st.cfg.AllowDomains = c.StringSlice("allow-domain")
	if _, err := egress.NewAllowlist(st.cfg.AllowDomains); err != nil {
		return nil, badInput("--allow-domain: %v", err)
	}
	st.cfg.EgressNetwork = c.String("egress-network")
	st.cfg.PinModelKey = c.Bool("pin-model-key")
	st.cfg.ModelAPIURL = c.String("model-api-url")
	if st.cfg.PinModelKey && st.cfg.Network != supervisor.NetworkAllowlist {
		return nil, badInput("--pin-model-key needs --network allowlist")
	}
	st.cfg.Runtime = c.String("runtime")
	st.cfg.NoAgentGit = c.Bool("no-agent-git")
	if st.cfg.VerifyRetries = c.Int("verify-retries"); st.cfg.VerifyRetries < 0 {
		return nil, badInput("--verify-retries must not be negative (got %d)", st.cfg.VerifyRetries)
	}
	if c.IsSet("share") {
		st.cfg.Share = []string{} // set but empty or "none": share nothing
		for _, p := range c.StringSlice("share") {
			if p != "none" {
				st.cfg.Share = append(st.cfg.Share, p)
			}
		}
	}
	st.cfg.DependencyCaches = !c.Bool("no-caches")
	st.ghAPIURL = c.String("github-api-url")
	return st, nil
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

// modelEnv returns the provider's model credential from the environment: the
// only secret that ever enters a task container.
func modelEnv(provider string) ([]string, []string, error) {
	var names []string
	switch provider {
	case supervisor.ProviderCursor:
		names = []string{"CURSOR_API_KEY"}
	default:
		names = []string{"CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"}
	}
	var env, secrets []string
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			env = append(env, n+"="+v)
			secrets = append(secrets, v)
		}
	}
	if len(env) == 0 {
		return nil, nil, badInput("missing model credential for %s: set %s", provider, strings.Join(names, " or "))
	}
	if provider != supervisor.ProviderCursor {
		if v := os.Getenv("ANTHROPIC_BASE_URL"); v != "" {
			env = append(env, "ANTHROPIC_BASE_URL="+v)
		}
	}
	return env, secrets, nil
}

func runnerID(host, repo string) string {
	if id := os.Getenv("TRAKKAR_RUNNER_ID"); id != "" {
		return id
	}
	sum := sha256.Sum256([]byte(host + "\x00" + repo))
	return "rnr_" + hex.EncodeToString(sum[:8])
}

func runAction(c *cli.Context) error {
	if c.Args().Present() {
		return badInput("unexpected argument %q (see --help)", c.Args().First())
	}
	st, err := checkFlags(c)
	if err != nil {
		return err
	}
	log, sink, err := newLogger(c.String("log-level"))
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	sink.mask(st.token)

	// Signals: while starting, the first ends the runner at once; once running,
	// the first drains (stop claiming, stop agents, report them stopped) and the
	// second aborts at once.
	ctx, abort := context.WithCancel(context.Background())
	defer abort()
	sig := watchSignals(abort, log)
	defer sig.close()
	err = run(ctx, c, st, log, sink, sig)
	if sig.stoppedEarly() {
		// Whatever startup step the signal cut short, stopping is what was asked.
		log.Info("stopped before starting: signal received")
		return nil
	}
	return err
}

// run starts the supervisor and works until it stops.
func run(ctx context.Context, c *cli.Context, st *setup, log *zap.Logger, sink *maskingSink, sig *signals) error {
	var err error
	dir := c.String("repo")
	if dir == "" {
		if dir, err = os.Getwd(); err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return badInput("bad --repo %q: %v", dir, err)
	}
	if supervisor.InsideWorktrees(absDir) {
		return badInput("%s is inside a task worktree folder; run trakkar-agent in the repository itself", absDir)
	}
	cfg := &st.cfg
	g, err := hostgit.New(hostgit.Options{StateDir: gitStateDir(), Logger: log})
	if err != nil {
		return fmt.Errorf("prepare host git: %w", err)
	}
	if cfg.Repo, err = g.RepoRoot(ctx, absDir); err != nil {
		return badInput("%s is not inside a git repository: run trakkar-agent in the repository the agent should work on, or pass --repo", absDir)
	}
	cfg.WorktreeRoot = supervisor.WorktreeRoot(cfg.Repo)

	// Before anything recovers or reconciles runs: one process per runner id.
	host, _ := os.Hostname()
	cfg.Runner = supervisor.RunnerInfo{ID: runnerID(host, cfg.Repo), Hostname: host, Version: version}
	if err := g.Exclude(ctx, cfg.Repo, supervisor.WorktreeExclude); err != nil {
		return fmt.Errorf("exclude worktree folder: %w", err)
	}
	lock, err := lockRunner(cfg.WorktreeRoot, gitStateDir(), cfg.Runner.ID, os.Getenv("TRAKKAR_RUNNER_ID") != "")
	if err != nil {
		return err
	}
	defer lock.release()

	var remoteURL string
	if !cfg.DryRun {
		remoteURL, err = g.RemoteURL(ctx, cfg.Repo, cfg.Remote)
		if err != nil {
			if errors.Is(err, hostgit.ErrNoRemote) {
				return badInput("the repository has no %q remote; add one (git remote add %s <url>) or use --publish local", cfg.Remote, cfg.Remote)
			}
			return fmt.Errorf("read remote %s: %w", cfg.Remote, err)
		}
	}
	secrets := []string{st.token}
	var fg *forge.GitHub
	if !cfg.DryRun && cfg.Publish != supervisor.PublishLocal {
		cfg.GitToken, _ = forge.ResolveToken(ctx, os.Getenv)
		if cfg.GitToken != "" {
			secrets = append(secrets, cfg.GitToken)
		}
	}
	if !cfg.DryRun && cfg.Publish == supervisor.PublishPR {
		repo, err := forge.ParseRemote(remoteURL)
		if err != nil {
			return badInput("cannot open pull requests for remote %s: %v (use --publish branch)", cfg.Remote, err)
		}
		if cfg.GitToken == "" {
			return badInput("opening pull requests needs a GitHub token: set GH_TOKEN or GITHUB_TOKEN, or log in with gh (or use --publish branch)")
		}
		cfg.ForgeRepo = repo
		base := st.ghAPIURL
		if base == "" {
			base = forge.APIBaseFor(repo)
		}
		fg = &forge.GitHub{BaseURL: base, Token: cfg.GitToken, Logger: log}
	}
	if cfg.Provider != "" && !cfg.DryRun {
		if cfg.ModelEnv, _, err = modelEnv(cfg.Provider); err != nil {
			return err
		}
	}

	var rt *docker.Client
	if !cfg.DryRun {
		if rt, err = docker.New(ctx, log); err != nil {
			return badInput("%v", err)
		}
		defer rt.Close()
		// Fail closed: a configured sandbox runtime that is missing is an error,
		// never a silent fallback to the default one.
		if cfg.Runtime != "" {
			has, err := rt.HasRuntime(ctx, cfg.Runtime)
			if err != nil {
				return fmt.Errorf("look up runtime: %w", err)
			}
			if !has {
				return badInput("runtime %q is not registered with the Docker engine; refusing to run without it (install and register it, or drop --runtime)", cfg.Runtime)
			}
		}
	}

	api, err := trakkar.NewClient(trakkar.Options{BaseURL: st.apiURL, Token: st.token, Version: version, Logger: log})
	if err != nil {
		return badInput("%v", err)
	}
	// The startup probe makes single attempts (MaxElapsed of 1ns: no retry
	// inside the client) so reachTrakkar can say why each one failed.
	probe, err := trakkar.NewClient(trakkar.Options{BaseURL: st.apiURL, Token: st.token, Version: version, Logger: log, MaxElapsed: time.Nanosecond})
	if err != nil {
		return badInput("%v", err)
	}
	giveUp := time.Duration(0) // a service waits for Trakkar as long as it takes
	if cfg.Once {
		giveUp = startupGiveUp
	}
	agent, err := reachTrakkar(ctx, probe, st.apiURL, giveUp, log)
	if err != nil {
		return err
	}
	if cfg.Provider == "" {
		cfg.Provider = agent.Provider
		if cfg.Provider == "" {
			cfg.Provider = supervisor.ProviderClaude
		}
		if !supervisor.ValidProvider(cfg.Provider) {
			return badInput("the agent's provider %q is not supported: pass --provider claude_code or cursor", cfg.Provider)
		}
	}
	var modelSecrets []string
	if !cfg.DryRun {
		if cfg.ModelEnv, modelSecrets, err = modelEnv(cfg.Provider); err != nil {
			return err
		}
		if cfg.Image == "" {
			cfg.Image = supervisor.DefaultImage(cfg.Provider)
		}
		ok, err := rt.ImageExists(ctx, cfg.Image)
		if err != nil {
			return fmt.Errorf("look up worker image: %w", err)
		}
		if !ok {
			return badInput("worker image %s not found: build it (see README, \"Worker images\") or pass --image", cfg.Image)
		}
	}
	cfg.Secrets = append(secrets, modelSecrets...)
	sink.mask(cfg.Secrets...)

	deps := supervisor.Deps{API: api, Git: g, Logger: log, Agent: &agent}
	if rt != nil {
		deps.Runtime = rt
	}
	if fg != nil {
		deps.Forge = fg
	}
	sup, err := supervisor.New(*cfg, deps)
	if err != nil {
		return badInput("%v", err)
	}
	sig.running(sup.Drain)
	if ctx.Err() != nil {
		// A signal during startup: recover nothing, claim nothing.
		return ctx.Err()
	}
	return sup.Run(ctx)
}

// gitStateDir is host git's private HOME and config, shared by the commands.
func gitStateDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("trakkar-agent-git-%d", os.Getuid()))
}

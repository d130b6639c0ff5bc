package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

func runFlags() []cli.Flag {
	// The values shown are the supervisor's defaults, written there once.
	d := supervisor.Defaults()
	return []cli.Flag{
		&cli.StringFlag{Name: "token", EnvVars: []string{"TRAKKAR_TOKEN"}, Usage: "Trakkar agent token (trk_agent_…); required"},
		&cli.StringFlag{Name: "api-url", EnvVars: []string{"TRAKKAR_API_URL"}, Value: "https://api.trakkar.in", Usage: "Trakkar API base URL"},
		&cli.StringFlag{Name: "provider", EnvVars: []string{"TRAKKAR_PROVIDER"}, Usage: "agent CLI: claude_code or cursor (default: the agent's setting, else claude_code)"},
		&cli.IntFlag{Name: "interval", Value: seconds(d.Interval), Usage: "seconds between polls when Trakkar answers at once (1-3600)"},
		&cli.IntFlag{Name: "timeout", Value: seconds(d.VerifyTimeout), Usage: "seconds the verify command may run, 1-86400; bounds the verify command only (the agent itself has no timer)"},
		&cli.IntFlag{Name: "verify-retries", Value: d.VerifyRetries, Usage: "times a failed verify command sends the agent back to fix it (0-20; 0: no fix rounds, the run fails)"},
		&cli.StringSliceFlag{Name: "share", Usage: "folder of the main checkout (relative) that tasks see read-through with a private writable layer (repeatable; default node_modules when present; none to share nothing)"},
		&cli.BoolFlag{Name: "no-caches", Usage: "do not mount the per-task package manager cache volumes into task containers"},
		&cli.IntFlag{Name: "max-concurrency", Usage: "tasks worked at once, up to " + strconv.Itoa(supervisor.MaxConcurrencyLimit) + "; 0: the agent's setting, else " + strconv.Itoa(supervisor.DefaultConcurrency)},
		&cli.IntFlag{Name: "max-starting", Usage: "runs set up at once (claimed, container not yet started), up to " + strconv.Itoa(supervisor.MaxStartingLimit) + "; more queued runs wait in Trakkar; 0: one per CPU, at least 2"},
		&cli.BoolFlag{Name: "once", Usage: "poll once, finish the claimed work, print a line per run and exit (1 when any run failed or was stopped)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "claim and read tasks only: no container, no push, no PR (the run is re-queued when its lease lapses)"},
		&cli.StringFlag{Name: "repo", Usage: "the git repository to work on (default: the one containing the working directory)"},
		&cli.StringFlag{Name: "image", EnvVars: []string{"TRAKKAR_IMAGE"}, Usage: "worker image (default: trakkar-agent/worker-<provider>:latest)"},
		&cli.StringFlag{Name: "publish", Value: d.Publish, Usage: "pr: push and open a pull request; branch: push only; local: commit on a local branch"},
		&cli.StringFlag{Name: "remote", Value: d.Remote, Usage: "git remote to fetch from and push to"},
		&cli.StringFlag{Name: "github-api-url", EnvVars: []string{"GITHUB_API_URL"}, Usage: "GitHub REST API base (default: derived from the remote; set for GitHub Enterprise)"},
		&cli.StringFlag{Name: "container-user", Usage: "uid:gid the agent runs as (default: your uid:gid; 1000:1000 when running as root)"},
		&cli.Int64Flag{Name: "memory-mb", Value: d.Resources.MemoryBytes >> 20, Usage: "memory limit per task container, MiB (no swap); at least " + strconv.Itoa(supervisor.MinMemoryMB) + ", at most the engine's memory"},
		&cli.Float64Flag{Name: "cpus", Value: float64(d.Resources.NanoCPUs) / 1e9, Usage: "CPU limit per task container; at least 0.01, at most the engine's CPUs"},
		&cli.Int64Flag{Name: "pids-limit", Value: d.Resources.PidsLimit, Usage: "process limit per task container (64-4194304)"},
		&cli.IntFlag{Name: "stop-grace", Value: seconds(d.StopGrace), Usage: "seconds between SIGTERM and SIGKILL when stopping an agent (1-3600)"},
		&cli.IntFlag{Name: "poll-wait", Value: seconds(d.PollWait), Usage: "long-poll wait in seconds (0-30; 0: Trakkar answers at once, polls come every --interval)"},
		&cli.StringSliceFlag{Name: "protected-path", Usage: "paths the agent may not change, as globs with ** (repeatable; default .github/**, .gitlab-ci.yml, .devcontainer/**, .vscode/tasks.json, .envrc, .husky/**; a symlink at a parent of one is refused too)"},
		&cli.BoolFlag{Name: "allow-protected", Usage: "let the agent change protected paths"},
		&cli.IntFlag{Name: "max-file-mb", Value: int(d.Policy.MaxFileBytes >> 20), Usage: "largest file the agent may add, MiB (1-10240)"},
		&cli.IntFlag{Name: "max-files", Value: d.Policy.MaxFiles, Usage: "most paths one change may touch (1-1000000; a larger change is refused whole)"},
		&cli.StringFlag{Name: "network", Value: d.Network, Usage: "task network: open, none, or allowlist (only --allow-domain, through an egress proxy)"},
		&cli.StringSliceFlag{Name: "allow-domain", Usage: "domain reachable under --network allowlist (repeatable; .example.com allows subdomains; default: what the provider needs)"},
		&cli.BoolFlag{Name: "pin-model-key", Usage: "under --network allowlist, keep ANTHROPIC_API_KEY in the egress proxy, which injects it; the agent sees a placeholder"},
		&cli.StringFlag{Name: "model-api-url", Value: d.ModelAPIURL, Usage: "model API the pinned key is sent to"},
		&cli.StringFlag{Name: "egress-network", Usage: "Docker network the egress proxy reaches out from (default: the engine's bridge)"},
		&cli.StringFlag{Name: "runtime", Usage: "OCI runtime for task containers, e.g. runsc (gVisor); refused if the engine lacks it"},
		&cli.BoolFlag{Name: "no-agent-git", Usage: "give the agent no disposable git repository"},
		&cli.IntFlag{Name: "min-free-mb", Value: int(d.MinFreeBytes >> 20), Usage: "refuse to create a workspace with less free disk, MiB; 0: no check; at most the disk's size"},
		&cli.IntFlag{Name: "max-workspace-mb", EnvVars: []string{"TRAKKAR_MAX_WORKSPACE_MB"}, Value: int(d.MaxWorkspaceMB),
			Usage: "stop a task's container once what it can write on the host (its worktree and state folders) passes this, and fail the run, MiB; 0 means no cap"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"TRAKKAR_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"},
		logFormatFlag(),
		&cli.StringFlag{Name: "metrics-addr", EnvVars: []string{"TRAKKAR_METRICS_ADDR"},
			Usage: "serve Prometheus metrics at /metrics and a health check at /healthz on this address, e.g. 127.0.0.1:9464 (default: off)"},
	}
}

func seconds(d time.Duration) int { return int(d / time.Second) }

// setup is what the flags and environment say: the supervisor's configuration
// as far as it is known before the repository and Trakkar are, and what only
// the CLI needs.
type setup struct {
	cfg      supervisor.Config
	apiURL   string
	token    string
	ghAPIURL string
}

// errNoToken is the one line for a missing Trakkar token.
var errNoToken = badInput("missing Trakkar token: pass --token or set TRAKKAR_TOKEN (Trakkar → agent settings → runner token)")

// checkFlags reads flags and environment into a configuration. Its values are
// checked, by the supervisor's one validator, once the repository is known.
func checkFlags(c *cli.Context) (*setup, error) {
	st, err := readFlags(c)
	if err != nil {
		return nil, err
	}
	if st.token == "" {
		return nil, errNoToken
	}
	return st, nil
}

// readFlags is checkFlags without requiring the token: doctor reports a
// missing one as a failed check.
func readFlags(c *cli.Context) (*setup, error) {
	st := &setup{token: strings.TrimSpace(c.String("token")), apiURL: c.String("api-url"), ghAPIURL: c.String("github-api-url")}
	// Values whose conversion to bytes or nanoseconds would overflow are
	// refused here; the supervisor's validator checks the ranges.
	var overflow []error
	secs := func(name string) time.Duration {
		v := c.Int(name)
		if v > maxFlagSeconds || v < -maxFlagSeconds {
			overflow = append(overflow, fmt.Errorf("--%s %d is out of range", name, v))
			return 0
		}
		return time.Duration(v) * time.Second
	}
	mib := func(name string, v int64) int64 {
		if v > maxFlagMiB || v < -maxFlagMiB {
			overflow = append(overflow, fmt.Errorf("--%s %d is out of range", name, v))
			return 0
		}
		return v << 20
	}
	cpus := c.Float64("cpus")
	if math.IsNaN(cpus) || math.IsInf(cpus, 0) || math.Abs(cpus) > maxFlagCPUs {
		overflow = append(overflow, fmt.Errorf("--cpus %g is out of range", cpus))
		cpus = 0
	}
	user := c.String("container-user")
	if user == "" {
		user = supervisor.Defaults().ContainerUser
	}
	// Every field a flag sets; the flags' own defaults are supervisor.Defaults().
	cfg := supervisor.Config{
		Provider:       c.String("provider"),
		Interval:       secs("interval"),
		PollWait:       secs("poll-wait"),
		VerifyTimeout:  secs("timeout"),
		VerifyRetries:  c.Int("verify-retries"),
		MaxConcurrency: c.Int("max-concurrency"),
		MaxStarting:    c.Int("max-starting"),
		Once:           c.Bool("once"),
		DryRun:         c.Bool("dry-run"),
		Image:          c.String("image"),
		Publish:        c.String("publish"),
		Remote:         c.String("remote"),
		ContainerUser:  user,
		StopGrace:      secs("stop-grace"),
		Resources: docker.Resources{
			MemoryBytes: mib("memory-mb", c.Int64("memory-mb")),
			NanoCPUs:    int64(cpus * 1e9),
			PidsLimit:   c.Int64("pids-limit"),
		},
		Policy: importpolicy.Options{
			MaxFileBytes:   mib("max-file-mb", int64(c.Int("max-file-mb"))),
			MaxFiles:       c.Int("max-files"),
			Protected:      c.StringSlice("protected-path"),
			AllowProtected: c.Bool("allow-protected"),
		},
		MinFreeBytes:     mib("min-free-mb", int64(c.Int("min-free-mb"))),
		MaxWorkspaceMB:   int64(c.Int("max-workspace-mb")),
		Network:          c.String("network"),
		AllowDomains:     c.StringSlice("allow-domain"),
		EgressNetwork:    c.String("egress-network"),
		PinModelKey:      c.Bool("pin-model-key"),
		ModelAPIURL:      c.String("model-api-url"),
		Runtime:          c.String("runtime"),
		NoAgentGit:       c.Bool("no-agent-git"),
		DependencyCaches: !c.Bool("no-caches"),
	}
	if c.IsSet("share") {
		cfg.Share = []string{} // set but empty or "none": share nothing
		for _, p := range c.StringSlice("share") {
			if p != "none" {
				cfg.Share = append(cfg.Share, p)
			}
		}
	}
	if len(overflow) > 0 {
		return nil, badInput("%s", oneLine(errors.Join(overflow...)))
	}
	st.cfg = cfg
	return st, nil
}

// Beyond these a flag's value overflows once converted; far beyond any range.
const (
	maxFlagSeconds = 1 << 31
	maxFlagMiB     = 1 << 40
	maxFlagCPUs    = 1 << 20
)

// oneLine puts a joined error (one per bad value) on one line for stderr.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// modelKeyNames are the variables each provider's model credential is read
// from, in order.
var modelKeyNames = map[string][]string{
	supervisor.ProviderClaude: {"CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"},
	supervisor.ProviderCursor: {"CURSOR_API_KEY"},
}

// modelEnv returns the provider's model credential from the environment: the
// only secret that ever enters a task container.
func modelEnv(provider string) ([]string, []string, error) {
	names := modelKeyNames[supervisor.ProviderClaude]
	if provider == supervisor.ProviderCursor {
		names = modelKeyNames[supervisor.ProviderCursor]
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
	log, sink, err := newLogger(c.String("log-level"), c.String("log-format"))
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
	// Served from the start, so /healthz says "starting" until the poll loop
	// runs, and a bad or taken address is said before anything else.
	m, stopMetrics, err := serveMetrics(ctx, c.String("metrics-addr"), log)
	if err != nil {
		return err
	}
	defer stopMetrics()
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
	// Every value is checked here, before anything touches the network.
	if err := cfg.Validate(); err != nil {
		return badInput("%s", oneLine(err))
	}

	// Before anything recovers or reconciles runs: one process per runner id.
	host, _ := os.Hostname()
	cfg.Runner = supervisor.RunnerInfo{ID: runnerID(host, cfg.Repo), Hostname: host, Version: runnerVersion(), Clone: cfg.Repo}
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
	// The model credential is read once the provider is known: here when a
	// flag names it (so a missing one is said before Docker is asked), else
	// once the agent's settings are read.
	var modelSecrets []string
	credentials := func() error {
		if cfg.DryRun || cfg.ModelEnv != nil {
			return nil
		}
		var err error
		cfg.ModelEnv, modelSecrets, err = modelEnv(cfg.Provider)
		return err
	}
	if cfg.Provider != "" {
		if err := credentials(); err != nil {
			return err
		}
	}

	var rt *docker.Client
	var machine supervisor.Host
	if machine.DiskBytes, err = supervisor.DiskSize(cfg.WorktreeRoot); err != nil {
		return err
	}
	if !cfg.DryRun {
		if rt, err = docker.New(ctx, log); err != nil {
			return badInput("%v", err)
		}
		defer rt.Close()
		engine, err := rt.Engine(ctx)
		if err != nil {
			return err
		}
		machine.CPUs, machine.MemoryBytes = engine.CPUs, engine.MemoryBytes
	}
	if note := fitDefaultLimits(c, cfg, machine); note != "" {
		log.Info(note)
	}
	// Limits the machine cannot meet would fail every task: refuse them now.
	if err := cfg.CheckHost(machine); err != nil {
		return badInput("%s", oneLine(err))
	}
	if !cfg.DryRun {
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

	var obs trakkar.RequestObserver
	if m != nil {
		obs = m
	}
	api, err := trakkar.NewClient(trakkar.Options{BaseURL: st.apiURL, Token: st.token, Version: runnerVersion(), Logger: log,
		RunnerID: cfg.Runner.ID, Observer: obs})
	if err != nil {
		return badInput("%v", err)
	}
	// The startup probe makes single attempts (MaxElapsed of 1ns: no retry
	// inside the client) so reachTrakkar can say why each one failed.
	probe, err := trakkar.NewClient(trakkar.Options{BaseURL: st.apiURL, Token: st.token, Version: runnerVersion(), Logger: log, MaxElapsed: time.Nanosecond, Observer: obs})
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
	// The configuration is final from here: the supervisor takes it as it is.
	if err := cfg.Resolve(agent); err != nil {
		return badInput("%v", err)
	}
	if err := credentials(); err != nil {
		return err
	}
	if !cfg.DryRun {
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
	if m != nil {
		deps.Metrics = m
	}
	var ended *results
	if cfg.Once {
		ended = &results{log: log}
		deps.OnRunEnd = ended.add
	}
	sup, err := supervisor.New(*cfg, deps)
	if err != nil {
		return badInput("%s", oneLine(err))
	}
	watchSupervisor(m, sup)
	sig.running(sup.Drain)
	if ctx.Err() != nil {
		// A signal during startup: recover nothing, claim nothing.
		return ctx.Err()
	}
	err = sup.Run(ctx)
	if ended == nil {
		return err
	}
	// --once's result: every run's line, then the exit status they decide.
	_ = log.Sync()
	if serr := ended.summarize(os.Stderr); err == nil {
		err = serr
	}
	return err
}

// fitDefaultLimits lowers the default CPU and memory limits to what a small
// engine has (the engine refuses a CPU limit above its CPUs); a value the user
// set is left for CheckHost to refuse. It says what it lowered, or "".
func fitDefaultLimits(c *cli.Context, cfg *supervisor.Config, h supervisor.Host) string {
	var notes []string
	if !c.IsSet("cpus") && h.CPUs > 0 && cfg.Resources.NanoCPUs > int64(h.CPUs)*1e9 {
		cfg.Resources.NanoCPUs = int64(h.CPUs) * 1e9
		notes = append(notes, fmt.Sprintf("--cpus %d", h.CPUs))
	}
	if !c.IsSet("memory-mb") && h.MemoryBytes > 0 && cfg.Resources.MemoryBytes > h.MemoryBytes {
		cfg.Resources.MemoryBytes = h.MemoryBytes >> 20 << 20
		notes = append(notes, fmt.Sprintf("--memory-mb %d", h.MemoryBytes>>20))
	}
	if len(notes) == 0 {
		return ""
	}
	return "the Docker engine has less than the default limits: using " + strings.Join(notes, " and ")
}

// gitStateDir is host git's private HOME and config, shared by the commands.
func gitStateDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("trakkar-agent-git-%d", os.Getuid()))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// doctorTimeout bounds the whole checklist: each network check gets a part.
const (
	doctorTimeout = 2 * time.Minute
	checkTimeout  = 15 * time.Second
)

// minGitVersion: host git is isolated with GIT_CONFIG_GLOBAL, which git
// honours from 2.32 on; older git would read the user's global config.
var minGitVersion = [2]int{2, 32}

// agentBinary is the agent CLI each provider's worker runs, as worker/claude.go
// and worker/cursor.go name it.
var agentBinary = map[string]string{
	supervisor.ProviderClaude: "claude",
	supervisor.ProviderCursor: "cursor-agent",
}

// defaultImagePath is the PATH a container gets when its image sets none.
const defaultImagePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check that this machine and repository can run tasks: one line per check, ✔ or ✖ with the fix",
		Description: "Takes the same options and environment as running the agent, and checks: Docker and its\n" +
			"API version, the worker image (trakkar-worker entrypoint, the provider's CLI on PATH), the\n" +
			"runtime, the model credential (never printed), the Trakkar token and the agent's settings,\n" +
			"the GitHub token and its push access, free disk, git's version, that .trakkar-worktrees is\n" +
			"excluded, and that no other runner holds this repository. Nothing is changed and no task\n" +
			"container is started. Exit status: 0 when every check passes, 1 when any fails, 2 on bad input.",
		Flags:  runFlags(),
		Action: doctorAction,
	}
}

// checklist prints one line per check.
type checklist struct {
	w      io.Writer
	failed int
	total  int
}

func (l *checklist) pass(name, detail string) {
	l.total++
	fmt.Fprintf(l.w, "✔ %s: %s\n", name, detail)
}

func (l *checklist) fail(name, detail, fix string) {
	l.total++
	l.failed++
	fmt.Fprintf(l.w, "✖ %s: %s\n    fix: %s\n", name, detail, fix)
}

func doctorAction(c *cli.Context) error {
	if c.Args().Present() {
		return badInput("unexpected argument %q (see trakkar-agent doctor --help)", c.Args().First())
	}
	st, err := readFlags(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), doctorTimeout)
	defer cancel()
	l := &checklist{w: os.Stdout}
	doctor(ctx, c, st, l)
	if l.failed > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", l.failed, l.total)
	}
	fmt.Fprintf(l.w, "all %d checks passed\n", l.total)
	return nil
}

// doctor runs the checks in order; a check that depends on a failed one is
// not run (its failure would only repeat the first).
func doctor(ctx context.Context, c *cli.Context, st *setup, l *checklist) {
	log := zap.NewNop() // the checklist is the output; clients' logs are not
	cfg := &st.cfg

	g, gitErr := hostgit.New(hostgit.Options{StateDir: gitStateDir(), Logger: log})
	repoOK := gitErr == nil && checkRepo(ctx, c, g, cfg, l)
	if repoOK {
		if err := cfg.Validate(); err != nil {
			l.fail("Options", oneLine(err), "correct the option (see trakkar-agent --help and docs/options.md)")
		} else {
			l.pass("Options", "every value is in range")
		}
	}

	rt, engine := checkDocker(ctx, l, log)
	if rt != nil {
		defer rt.Close()
	}
	if repoOK {
		checkLimits(c, cfg, engine, rt != nil, l)
	}

	agent, trakkarOK := checkTrakkar(ctx, st, l, log)
	if err := cfg.Resolve(agent); err != nil {
		l.fail("Provider", err.Error(), "pass --provider claude_code or cursor")
	} else {
		source := "--provider"
		if c.String("provider") == "" {
			source = "the agent's setting"
			if !trakkarOK || agent.Provider == "" {
				source = "the default"
			}
		}
		l.pass("Provider", cfg.Provider+" (from "+source+")")
	}
	if _, known := agentBinary[cfg.Provider]; known {
		if rt != nil {
			checkImage(ctx, rt, cfg, l)
		}
		checkModelKey(cfg.Provider, l)
	}
	if rt != nil {
		checkRuntime(cfg.Runtime, engine, l)
	}
	if repoOK {
		checkGitHub(ctx, g, st, l, log)
	}
	if repoOK {
		checkDisk(cfg, l)
	}
	checkGit(ctx, g, gitErr, l)
	if repoOK {
		checkExcluded(ctx, g, cfg, l)
		checkLock(cfg, l)
	}
}

func checkRepo(ctx context.Context, c *cli.Context, g *hostgit.Git, cfg *supervisor.Config, l *checklist) bool {
	dir := c.String("repo")
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			l.fail("Repository", "no working directory: "+err.Error(), "run doctor in the repository, or pass --repo")
			return false
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil || supervisor.InsideWorktrees(abs) {
		l.fail("Repository", dir+" is inside a task worktree folder (or unusable)", "run doctor in the repository itself")
		return false
	}
	if cfg.Repo, err = g.RepoRoot(ctx, abs); err != nil {
		l.fail("Repository", abs+" is not inside a git repository", "run doctor in the repository the agent should work on, or pass --repo")
		return false
	}
	cfg.WorktreeRoot = supervisor.WorktreeRoot(cfg.Repo)
	l.pass("Repository", cfg.Repo)
	return true
}

func checkDocker(ctx context.Context, l *checklist, log *zap.Logger) (*docker.Client, docker.Engine) {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	rt, err := docker.New(cctx, log)
	if err != nil {
		l.fail("Docker", oneLine(err), "start the Docker engine, let this user use it (docker group), or set DOCKER_HOST")
		return nil, docker.Engine{}
	}
	engine, err := rt.Engine(cctx)
	if err != nil {
		rt.Close()
		l.fail("Docker", oneLine(err), "check the Docker engine's health (docker info)")
		return nil, docker.Engine{}
	}
	l.pass("Docker", fmt.Sprintf("engine %s, API %s, %d CPUs, %d MiB memory", engine.ServerVersion, engine.APIVersion, engine.CPUs, engine.MemoryBytes>>20))
	return rt, engine
}

func checkLimits(c *cli.Context, cfg *supervisor.Config, engine docker.Engine, haveEngine bool, l *checklist) {
	host := supervisor.Host{}
	if haveEngine {
		host.CPUs, host.MemoryBytes = engine.CPUs, engine.MemoryBytes
	}
	var err error
	if host.DiskBytes, err = supervisor.DiskSize(cfg.WorktreeRoot); err != nil {
		l.fail("Limits", oneLine(err), "check the disk holding the repository")
		return
	}
	fitDefaultLimits(c, cfg, host) // as the run would
	if err := cfg.CheckHost(host); err != nil {
		l.fail("Limits", oneLine(err), "lower --cpus, --memory-mb or --min-free-mb")
		return
	}
	l.pass("Limits", fmt.Sprintf("--cpus %g, --memory-mb %d, --pids-limit %d per task fit this machine",
		float64(cfg.Resources.NanoCPUs)/1e9, cfg.Resources.MemoryBytes>>20, cfg.Resources.PidsLimit))
}

func checkTrakkar(ctx context.Context, st *setup, l *checklist, log *zap.Logger) (trakkar.Agent, bool) {
	if st.token == "" {
		l.fail("Trakkar", "no token", "pass --token or set TRAKKAR_TOKEN (Trakkar → agent settings → runner token)")
		return trakkar.Agent{}, false
	}
	probe, err := trakkar.NewClient(trakkar.Options{BaseURL: st.apiURL, Token: st.token, Version: runnerVersion(), Logger: log, MaxElapsed: time.Nanosecond})
	if err != nil {
		l.fail("Trakkar", oneLine(err), "correct --api-url / TRAKKAR_API_URL")
		return trakkar.Agent{}, false
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	agent, err := probe.Me(cctx)
	var ae *trakkar.APIError
	switch {
	case errors.Is(err, trakkar.ErrUnauthorized):
		l.fail("Trakkar", "the token was refused (401) at "+st.apiURL, "check --token / TRAKKAR_TOKEN: copy the runner token from Trakkar → agent settings")
		return trakkar.Agent{}, false
	case errors.As(err, &ae):
		l.fail("Trakkar", st.apiURL+" answered "+oneLine(ae), "check --api-url / TRAKKAR_API_URL")
		return trakkar.Agent{}, false
	case err != nil:
		l.fail("Trakkar", "cannot reach "+st.apiURL+": "+unreachableCause(err, cctx.Err() != nil, checkTimeout), "check --api-url / TRAKKAR_API_URL and this machine's network")
		return trakkar.Agent{}, false
	}
	settings := []string{"provider " + orDefault(agent.Provider, "not set")}
	if agent.MaxConcurrency != nil {
		settings = append(settings, "max concurrency "+strconv.Itoa(*agent.MaxConcurrency))
	} else {
		settings = append(settings, "max concurrency not set")
	}
	l.pass("Trakkar", fmt.Sprintf("token accepted at %s: agent %q (%s)", st.apiURL, agent.Name, strings.Join(settings, ", ")))
	return agent, true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func checkImage(ctx context.Context, rt *docker.Client, cfg *supervisor.Config, l *checklist) {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	build := "build it with bash images/build.sh (see README, \"Worker images\"), or pass --image"
	img, err := rt.InspectImage(cctx, cfg.Image)
	if docker.IsNotFound(err) {
		l.fail("Worker image", cfg.Image+" is not on this Docker engine", build)
		return
	}
	if err != nil {
		l.fail("Worker image", oneLine(err), build)
		return
	}
	if len(img.Entrypoint) == 0 || filepath.Base(img.Entrypoint[0]) != "trakkar-worker" {
		l.fail("Worker image", fmt.Sprintf("%s has entrypoint %q, not trakkar-worker", cfg.Image, img.Entrypoint),
			"build the image from images/ (its ENTRYPOINT is trakkar-worker), or pass the right --image")
		return
	}
	bin := agentBinary[cfg.Provider]
	pathEnv := defaultImagePath
	for _, e := range img.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	found, err := rt.FindInImage(cctx, cfg.Image, bin, filepath.SplitList(pathEnv))
	switch {
	case err != nil:
		l.fail("Worker image", oneLine(err), build)
	case found == "":
		l.fail("Worker image", fmt.Sprintf("%s has no %s on its PATH (%s)", cfg.Image, bin, pathEnv),
			"build the "+cfg.Provider+" worker image (bash images/build.sh), or pass --image / --provider to match")
	default:
		l.pass("Worker image", fmt.Sprintf("%s: entrypoint %s, %s at %s", cfg.Image, img.Entrypoint[0], bin, found))
	}
}

func checkModelKey(provider string, l *checklist) {
	env, _, err := modelEnv(provider)
	if err != nil {
		l.fail("Model credential", err.Error(), "export the variable in the runner's environment (with the offline test image any value works)")
		return
	}
	var names []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name) // names only: a value is never printed
	}
	l.pass("Model credential", strings.Join(names, ", ")+" set")
}

func checkRuntime(runtime string, engine docker.Engine, l *checklist) {
	if runtime == "" {
		l.pass("Runtime", "the engine's default ("+orDefault(engine.DefaultRuntime, "runc")+"); --runtime not set")
		return
	}
	for _, r := range engine.Runtimes {
		if r == runtime {
			l.pass("Runtime", runtime+" is registered with the engine")
			return
		}
	}
	l.fail("Runtime", fmt.Sprintf("%s is not registered with the engine (it has %s)", runtime, strings.Join(engine.Runtimes, ", ")),
		"install and register it (for gVisor: bash images/setup-gvisor.sh), or drop --runtime")
}

func checkGitHub(ctx context.Context, g *hostgit.Git, st *setup, l *checklist, log *zap.Logger) {
	cfg := &st.cfg
	if cfg.Publish == supervisor.PublishLocal {
		l.pass("GitHub", "not needed with --publish local")
		return
	}
	remoteURL, err := g.RemoteURL(ctx, cfg.Repo, cfg.Remote)
	if err != nil {
		l.fail("GitHub", fmt.Sprintf("the repository has no %q remote", cfg.Remote), fmt.Sprintf("git remote add %s <url>, or use --publish local", cfg.Remote))
		return
	}
	token, _ := forge.ResolveToken(ctx, os.Getenv)
	if token == "" {
		l.fail("GitHub", "no GitHub token", "set GH_TOKEN or GITHUB_TOKEN, or log in with gh")
		return
	}
	repo, err := forge.ParseRemote(remoteURL)
	if err != nil {
		if cfg.Publish == supervisor.PublishPR {
			l.fail("GitHub", fmt.Sprintf("remote %s is not a GitHub repository: %v", cfg.Remote, err), "use --publish branch")
			return
		}
		l.pass("GitHub", "token present; remote "+cfg.Remote+" is not on GitHub, so its push access is not checked")
		return
	}
	base := st.ghAPIURL
	if base == "" {
		base = forge.APIBaseFor(repo)
	}
	fg := &forge.GitHub{BaseURL: base, Token: token, Logger: log}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	access, err := fg.Access(cctx, repo)
	var ae *forge.APIError
	switch {
	case errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403 || ae.Status == 404):
		l.fail("GitHub", fmt.Sprintf("the token cannot read %s/%s (GitHub answered %d)", repo.Owner, repo.Name, ae.Status),
			"use a token of an account with write access to the repository (classic: repo scope; fine-grained: Contents and Pull requests read/write)")
	case err != nil:
		l.fail("GitHub", oneLine(err), "check the network, or --github-api-url for GitHub Enterprise")
	case !access.Push:
		l.fail("GitHub", fmt.Sprintf("the token has no push access to %s/%s", repo.Owner, repo.Name),
			"give the token's account write access to the repository")
	default:
		what := "push access"
		if cfg.Publish == supervisor.PublishPR {
			what += ", so it can push branches and open pull requests"
		}
		l.pass("GitHub", fmt.Sprintf("token has %s to %s/%s", what, repo.Owner, repo.Name))
	}
}

func checkDisk(cfg *supervisor.Config, l *checklist) {
	free, err := supervisor.FreeDisk(cfg.WorktreeRoot)
	if err != nil {
		l.fail("Free disk", oneLine(err), "check the disk holding the repository")
		return
	}
	need := uint64(max(cfg.MinFreeBytes, 0))
	if free < need {
		l.fail("Free disk", fmt.Sprintf("%d MiB free under %s, below --min-free-mb %d", free>>20, cfg.Repo, need>>20),
			"free space (trakkar-agent prune removes finished workspaces) or lower --min-free-mb")
		return
	}
	l.pass("Free disk", fmt.Sprintf("%d MiB free (--min-free-mb %d)", free>>20, need>>20))
}

func checkGit(ctx context.Context, g *hostgit.Git, gitErr error, l *checklist) {
	if gitErr != nil {
		l.fail("Git", oneLine(gitErr), "install git "+versionString(minGitVersion)+" or newer")
		return
	}
	v, err := g.Version(ctx)
	if err != nil {
		l.fail("Git", oneLine(err), "install git "+versionString(minGitVersion)+" or newer")
		return
	}
	if !atLeast(v, minGitVersion) {
		l.fail("Git", "git "+v+" is older than "+versionString(minGitVersion)+" (host git's isolation needs GIT_CONFIG_GLOBAL)",
			"install git "+versionString(minGitVersion)+" or newer")
		return
	}
	l.pass("Git", "git "+v)
}

func versionString(v [2]int) string { return fmt.Sprintf("%d.%d", v[0], v[1]) }

// atLeast compares the major.minor of a git version such as "2.39.5" or
// "2.45.1.windows.1".
func atLeast(version string, min [2]int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > min[0] || (major == min[0] && minor >= min[1])
}

func checkExcluded(ctx context.Context, g *hostgit.Git, cfg *supervisor.Config, l *checklist) {
	ok, err := g.Excluded(ctx, cfg.Repo, supervisor.WorktreeExclude)
	switch {
	case err != nil:
		l.fail("Worktree folder", oneLine(err), "check the repository's .git/info/exclude")
	case ok:
		l.pass("Worktree folder", supervisor.WorktreeFolder+" is excluded in .git/info/exclude")
	default:
		if _, err := os.Stat(cfg.WorktreeRoot); err == nil {
			l.fail("Worktree folder", supervisor.WorktreeFolder+" exists but is not excluded: git status shows the task worktrees",
				"echo '"+supervisor.WorktreeExclude+"' >> \"$(git rev-parse --git-common-dir)/info/exclude\"")
			return
		}
		l.pass("Worktree folder", supervisor.WorktreeFolder+" is not there yet; the runner excludes it in .git/info/exclude when it starts")
	}
}

func checkLock(cfg *supervisor.Config, l *checklist) {
	host, _ := os.Hostname()
	id := runnerID(host, cfg.Repo)
	held, err := lockHolder(cfg.WorktreeRoot, gitStateDir(), id, os.Getenv("TRAKKAR_RUNNER_ID") != "")
	switch {
	case err != nil:
		l.fail("Runner lock", oneLine(err), "check the permissions of "+cfg.WorktreeRoot)
	case held != "":
		l.fail("Runner lock", "another trakkar-agent ("+held+") is working this repository as runner "+id,
			"stop it first, or run in another clone (or with its own TRAKKAR_RUNNER_ID)")
	default:
		l.pass("Runner lock", "no other runner holds this repository (runner id "+id+")")
	}
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/logkey"
	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// Supervisor polls Trakkar and works claimed runs, each in its own container.
type Supervisor struct {
	cfg     Config
	api     API
	rt      Runtime
	git     Git
	forge   Forge
	log     *zap.Logger
	redact  *redact.Redactor
	agent   trakkar.Agent
	known   *trakkar.Agent // settings read before Run, if any
	drainCh chan struct{}
	drainMu sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	active  int
	// starting counts claimed runs whose container has not started yet (admission.go).
	starting int
	slotCh   chan struct{} // signalled whenever a slot or a setup place frees
	// byRun is the attempt this process works of each run: a newer claim of
	// the same run supersedes the older attempt (see track).
	byRun map[string]*run
	// recovering holds the runs a restart continues, from before their
	// resume claims them until it ends: Trakkar may list such a run as
	// queued meanwhile (its lease lapsed while no process ran), and the
	// poll loop must not start it a second time.
	recovering map[string]bool
	// repoMu serialises the operations on the user's repository that update
	// the same refs (fetch, push) or prune worktree records. Worktree adds do
	// not take it: git's own locks cover them.
	repoMu sync.Mutex
	// fetches lets a burst of claims share one fetch of the remote.
	fetches *fetchGroup
	// onRunEnd, when set, hears how each run ended (Deps.OnRunEnd).
	onRunEnd func(RunResult)
	metrics  Metrics

	// Read by Snapshot, under mu.
	live     map[*run]struct{} // runs being driven
	polling  bool
	lastPoll time.Time
	slots    int
	lease    time.Duration // as the last claim or heartbeat gave it
}

// Deps are the adapters the supervisor drives.
type Deps struct {
	API     API
	Runtime Runtime // may be nil in dry-run mode
	Git     Git
	Forge   Forge // may be nil unless publishing PRs
	Logger  *zap.Logger
	// Agent is the agent's settings when the caller already read them (the
	// CLI, at startup); nil: Run reads them.
	Agent *trakkar.Agent
	// OnRunEnd, when set, is called once for every run this process worked,
	// as it ends, from the run's goroutine.
	OnRunEnd func(RunResult)
	// Metrics, when set, hears what the runs do (--metrics-addr).
	Metrics Metrics
}

// New validates the configuration and returns a supervisor.
func New(cfg Config, d Deps) (*Supervisor, error) {
	cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if d.API == nil || d.Git == nil || (d.Runtime == nil && !cfg.DryRun) {
		return nil, errors.New("supervisor needs an API client, a runtime and git")
	}
	if cfg.Publish == PublishPR && d.Forge == nil && !cfg.DryRun {
		return nil, errors.New("publishing pull requests needs a forge client")
	}
	log := d.Logger
	if log == nil {
		log = zap.NewNop()
	}
	var m Metrics = nopMetrics{}
	if d.Metrics != nil {
		m = d.Metrics
	}
	s := &Supervisor{
		cfg: cfg, api: d.API, rt: d.Runtime, git: d.Git, forge: d.Forge, onRunEnd: d.OnRunEnd, metrics: m,
		live:       map[*run]struct{}{},
		log:        log.Named("supervisor"),
		redact:     redact.New(cfg.Secrets...),
		known:      d.Agent,
		drainCh:    make(chan struct{}),
		slotCh:     make(chan struct{}, 1),
		byRun:      map[string]*run{},
		recovering: map[string]bool{},
	}
	share := cfg.FetchShare
	if share <= 0 {
		share = defaultFetchShare
	}
	s.fetches = &fetchGroup{share: share, fetch: func(ctx context.Context) error {
		s.repoMu.Lock()
		defer s.repoMu.Unlock()
		return s.git.Fetch(ctx, s.cfg.Repo, s.cfg.Remote, s.auth())
	}}
	return s, nil
}

// Drain stops claiming new work and stops running agents gracefully; Run then
// reports them stopped and returns. Safe to call more than once.
func (s *Supervisor) Drain() {
	s.drainMu.Do(func() {
		s.log.Info("draining: no new claims, stopping running agents")
		close(s.drainCh)
	})
}

func (s *Supervisor) draining() bool {
	select {
	case <-s.drainCh:
		return true
	default:
		return false
	}
}

// Run works until ctx is cancelled (abort), Drain is called, or — with Once —
// the runs claimed in the first poll are finished. It returns an error only for
// conditions that make continuing pointless, such as an invalid token.
func (s *Supervisor) Run(ctx context.Context) error {
	agent, err := s.settings(ctx)
	if err != nil {
		return err
	}
	s.agent = agent
	// A no-op for the CLI, which resolved the configuration at startup.
	if err := s.cfg.Resolve(agent); err != nil {
		return err
	}
	slots := s.concurrency()
	s.mu.Lock()
	s.slots = slots
	s.mu.Unlock()
	s.log.Info("started",
		zap.String("runner_id", s.cfg.Runner.ID), zap.String("hostname", s.cfg.Runner.Hostname),
		zap.String("agent", agent.Name), zap.String("provider", s.cfg.Provider),
		zap.Int("slots", slots), zap.String("repo", s.cfg.Repo), zap.String("image", s.cfg.Image),
		zap.Bool("once", s.cfg.Once), zap.Bool("dry_run", s.cfg.DryRun))

	if !s.cfg.DryRun {
		// Worktree removals a crash cut short; their folders are in the
		// trash, so no run waits for them.
		s.repoMu.Lock()
		err := s.git.PruneWorktrees(ctx, s.cfg.Repo)
		s.repoMu.Unlock()
		if err != nil {
			s.log.Warn("prune worktree records", zap.Error(err))
		}
		if err := hostgit.TrashLeftoverCheckouts(s.cfg.WorktreeRoot, trashDir(s.cfg.WorktreeRoot)); err != nil {
			s.log.Warn("clear leftover checkouts", zap.Error(err))
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := hostgit.EmptyTrash(trashDir(s.cfg.WorktreeRoot)); err != nil {
				s.log.Warn("empty the worktree trash", zap.Error(err))
			}
		}()
	}
	s.recoverRuns(ctx)
	err = s.pollLoop(ctx, slots)
	s.wg.Wait()
	s.log.Info("stopped")
	return err
}

// settings are the agent's settings: those read at startup, else Trakkar's.
func (s *Supervisor) settings(ctx context.Context) (trakkar.Agent, error) {
	if s.known != nil {
		return *s.known, nil
	}
	agent, err := s.api.Me(ctx)
	if err != nil {
		return trakkar.Agent{}, fmt.Errorf("read agent settings: %w", err)
	}
	return agent, nil
}

func (s *Supervisor) concurrency() int {
	if s.cfg.MaxConcurrency > 0 {
		return s.cfg.MaxConcurrency
	}
	if s.agent.MaxConcurrency != nil && *s.agent.MaxConcurrency > 0 {
		return *s.agent.MaxConcurrency
	}
	return DefaultConcurrency
}

func (s *Supervisor) free(slots int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slots - s.active
}

func (s *Supervisor) pollLoop(ctx context.Context, slots int) error {
	// Polls end early on drain as well as on abort.
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.drainCh:
			cancel()
		case <-pollCtx.Done():
		}
	}()
	s.setPolling(true)
	defer s.setPolling(false)
	for {
		s.pollRound()
		if pollCtx.Err() != nil {
			return nil
		}
		free := s.claimable(slots)
		wait := s.cfg.PollWait
		if s.cfg.Once {
			// The one poll takes what the slots hold; claims wait for setups below.
			wait, free = 0, s.free(slots)
		}
		if free <= 0 {
			// Waking now and then shows /healthz the loop is alive.
			select {
			case <-s.slotCh:
			case <-time.After(5 * time.Second):
			case <-pollCtx.Done():
			}
			continue
		}
		started := time.Now()
		runs, err := s.pollQueued(pollCtx, wait, free)
		if err != nil {
			if pollCtx.Err() != nil {
				return nil
			}
			return fmt.Errorf("poll queued runs: %w", err)
		}
		for _, r := range runs {
			if s.cfg.Once && !s.waitClaimable(pollCtx, slots) {
				break
			}
			if s.claimable(slots) <= 0 || pollCtx.Err() != nil {
				break
			}
			s.claimAndStart(ctx, r)
		}
		if s.cfg.Once {
			return nil
		}
		// A server that answers at once (no long poll) is polled every --interval.
		if len(runs) == 0 && time.Since(started) < wait/2+time.Second {
			s.sleep(pollCtx, s.cfg.Interval)
		}
	}
}

// retryPolicy is the wait after a failed poll or completion: 1s doubling up
// to maxWait (at most 128s), in the upper half so many runners spread out.
func retryPolicy(maxWait time.Duration) backoff.Policy {
	if maxWait <= 0 || maxWait > 128*time.Second {
		maxWait = 128 * time.Second
	}
	return backoff.Policy{Base: time.Second, Max: maxWait, Jitter: backoff.Equal}
}

// pollQueued asks for up to free queued runs, retrying failures on
// retryPolicy(--interval). Under --once, and for a rejected token, the first failure ends it.
func (s *Supervisor) pollQueued(ctx context.Context, wait time.Duration, free int) ([]trakkar.Run, error) {
	var runs []trakkar.Run
	retry := backoff.Retry{Policy: retryPolicy(s.cfg.Interval),
		Notify: func(attempt int, _ time.Duration, err error) {
			s.log.Warn("poll failed", zap.Error(err), zap.Int("failures", attempt))
		}}
	err := retry.Do(ctx, func(ctx context.Context, _ int) error {
		var err error
		runs, err = s.api.Queued(ctx, wait, free)
		if err != nil && (s.cfg.Once || errors.Is(err, trakkar.ErrUnauthorized) || ctx.Err() != nil) {
			return backoff.Permanent(err)
		}
		return err
	})
	return runs, err
}

// sleep waits d or until ctx is done; callers check ctx themselves.
func (s *Supervisor) sleep(ctx context.Context, d time.Duration) {
	_ = backoff.Sleep(ctx, d)
}

func (s *Supervisor) claimAndStart(ctx context.Context, r trakkar.Run) {
	log := s.log.With(zap.String(logkey.RunID, r.ID), zap.String(logkey.TaskID, r.TaskID))
	s.mu.Lock()
	held := s.recovering[r.ID]
	s.mu.Unlock()
	if held {
		log.Debug("queued run is being recovered here; its resume claims it")
		return
	}
	asked := time.Now()
	claim, err := s.api.Claim(ctx, r.ID, trakkar.Runner(s.cfg.Runner))
	if err == nil {
		s.timed(PhaseClaim, asked)
	}
	switch {
	case trakkar.IsAlreadyClaimed(err) || trakkar.IsGone(err) || trakkar.IsNotFound(err):
		log.Debug("run taken elsewhere or cancelled", zap.Error(err))
		return
	case err != nil:
		log.Warn("claim failed", zap.Error(err))
		return
	}
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	setupDone := s.beginSetup()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.releaseSlot()
		defer setupDone()
		defer s.survive(log)
		s.work(ctx, claim, setupDone)
	}()
}

func (s *Supervisor) releaseSlot() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	s.signalSlot()
}

// survive keeps a bug in one run from taking down the supervisor and every
// other task: the run is logged and left to its lease, so Trakkar queues it
// again.
func (s *Supervisor) survive(log *zap.Logger) {
	if v := recover(); v != nil {
		log.Error("run crashed; leaving it to its lease", zap.Any("panic", v), zap.Stack("stack"))
	}
}

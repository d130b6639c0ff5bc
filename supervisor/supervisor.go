package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
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
	slotCh  chan struct{} // signalled whenever a slot frees
	// repoMu serialises operations on the user's repository (fetch, worktree
	// add/remove) because git takes repository-wide locks for them.
	repoMu sync.Mutex
	// onRunEnd, when set, hears how each run ended (Deps.OnRunEnd).
	onRunEnd func(RunResult)
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
	return &Supervisor{
		cfg: cfg, api: d.API, rt: d.Runtime, git: d.Git, forge: d.Forge, onRunEnd: d.OnRunEnd,
		log:     log.Named("supervisor"),
		redact:  redact.New(cfg.Secrets...),
		known:   d.Agent,
		drainCh: make(chan struct{}),
		slotCh:  make(chan struct{}, 1),
	}, nil
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
	s.log.Info("started",
		zap.String("agent", agent.Name), zap.String("provider", s.cfg.Provider),
		zap.Int("slots", slots), zap.String("repo", s.cfg.Repo), zap.String("image", s.cfg.Image),
		zap.Bool("once", s.cfg.Once), zap.Bool("dry_run", s.cfg.DryRun))

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
	for {
		if pollCtx.Err() != nil {
			return nil
		}
		free := s.free(slots)
		if free <= 0 {
			select {
			case <-s.slotCh:
			case <-pollCtx.Done():
			}
			continue
		}
		wait := s.cfg.PollWait
		if s.cfg.Once {
			wait = 0
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
			if s.free(slots) <= 0 || pollCtx.Err() != nil {
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
	claim, err := s.api.Claim(ctx, r.ID, trakkar.Runner(s.cfg.Runner))
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
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.releaseSlot()
		defer s.survive(log)
		s.work(ctx, claim)
	}()
}

func (s *Supervisor) releaseSlot() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	select {
	case s.slotCh <- struct{}{}:
	default:
	}
}

// survive keeps a bug in one run from taking down the supervisor and every
// other task: the run is logged and left to its lease, so Trakkar queues it
// again.
func (s *Supervisor) survive(log *zap.Logger) {
	if v := recover(); v != nil {
		log.Error("run crashed; leaving it to its lease", zap.Any("panic", v), zap.Stack("stack"))
	}
}

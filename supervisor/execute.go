package supervisor

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/sandbox"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// ending says why the container stopped.
type ending int

const (
	endExited  ending = iota // the worker exited on its own
	endStopped               // a person pressed Stop
	endDrained               // the runner is shutting down
	endLost                  // the lease is gone
	endAborted               // the supervisor is aborting: leave everything as is

	// endDiskFull: the workspace grew past its cap (watchdog.go).
	endDiskFull
)

// agentRun is what one container run produced.
type agentRun struct {
	end    ending
	exit   docker.ExitStatus
	result *workerproto.Result
}

func (s *Supervisor) shutdownStopped() *trakkar.Completion {
	reason := "the runner shut down; the workspace is kept"
	return &trakkar.Completion{Outcome: trakkar.OutcomeStopped, Error: &reason, Summary: "Stopped because the runner shut down."}
}

func (s *Supervisor) attachSession(c *trakkar.Completion, ar *agentRun) {
	if ar.result == nil {
		return
	}
	if ar.result.SessionID != "" {
		id := ar.result.SessionID
		c.AgentSessionID = &id
	}
	c.Usage = trakkar.Usage(ar.result.Usage)
	if c.Summary == "" {
		c.Summary = ar.result.Summary
	}
}

// outcome decides a run that will not be published; nil means "publish".
func (s *Supervisor) outcome(r *run, ar *agentRun) *trakkar.Completion {
	switch ar.end {
	case endStopped:
		r.status("Agent stopped; the workspace is kept")
		return &trakkar.Completion{Outcome: trakkar.OutcomeStopped, Summary: "Stopped at the person's request."}
	case endDrained:
		r.status("Agent stopped because the runner is shutting down; the workspace is kept")
		return s.shutdownStopped()
	}
	if ar.end == endDiskFull {
		return s.fail(r, failReason{kind: reasonResources, event: "The agent's container was stopped", kept: true}, errText(s.diskFullReason()))
	}
	res := ar.result
	if ar.exit.OOMKilled {
		return s.fail(r, failReason{kind: reasonResources, msg: "the agent's container ran out of memory",
			event: "The agent's container ran out of memory"}, nil)
	}
	if res == nil {
		return s.fail(r, failReason{kind: reasonAgent, msg: "the worker left no result"}, errText(workerproto.ExitReason(ar.exit.Code)))
	}
	if res.Outcome == workerproto.OutcomeSucceeded && ar.exit.Code == workerproto.ExitOK {
		return nil
	}
	if res.Error != "" {
		// The worker reports classified failures itself.
		return s.fail(r, failReason{kind: reasonAgent, msg: res.Error, silent: true}, nil)
	}
	// Only an unexplained exit needs saying here.
	return s.fail(r, failReason{kind: reasonAgent, event: "Agent failed"}, errText(workerproto.ExitReason(ar.exit.Code)))
}

// runAgent creates and starts the worker container and supervises it to its end.
func (s *Supervisor) runAgent(ctx context.Context, r *run, ws *workspace) (*agentRun, error) {
	job, resumed := s.taskJob(r, ws)
	// The agent gets git status/diff/log against a disposable repository whose
	// only commit is the run's starting point; the user's .git never enters.
	ws.scratch = false
	if !s.cfg.NoAgentGit {
		ws.scratch = s.initScratch(ctx, r, ws)
	}
	return s.startAgent(ctx, r, ws, job, resumed)
}

// initScratch makes the agent's repository: from the tree object when the
// worktree is a fresh checkout (nothing hashed again), else, or when that
// fails, from the worktree's files as they are (a kept workspace may hold an
// earlier run's uncommitted work).
func (s *Supervisor) initScratch(ctx context.Context, r *run, ws *workspace) bool {
	if ws.fresh {
		ws.fresh = false // the agent writes to the worktree from here on
		err := s.git.ScratchFromCheckout(ctx, ws.gitDir, ws.wt)
		if err == nil {
			return true
		}
		r.log.Warn("scratch repository from the checkout failed; hashing the worktree instead", zap.Error(err))
	}
	if err := s.git.InitScratch(ctx, ws.gitDir, ws.wt.Path, ws.wt.Branch); err != nil {
		r.log.Warn("the agent gets no git repository", zap.Error(err))
		return false
	}
	return true
}

// startAgent runs the worker with job (a verify fix round brings its own).
func (s *Supervisor) startAgent(ctx context.Context, r *run, ws *workspace, job workerproto.Job, resumed bool) (*agentRun, error) {
	b, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	if err := os.WriteFile(filepath.Join(ws.inDir, workerproto.JobFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("write job: %w", err)
	}
	// The worker writes its result here; an earlier run may have left the
	// folder read-only, or anything else in it.
	if err := sandbox.ResetDir(ws.outDir); err != nil {
		return nil, fmt.Errorf("prepare the out folder: %w", err)
	}
	key, err := writeEventKey(ws.outDir)
	if err != nil {
		return nil, err
	}
	r.rec.EventKey = key
	if err := s.handOver(ws); err != nil {
		return nil, err
	}
	box, sr := s.box(), sandboxRun(r, ws)
	if err := box.PrepareShares(sr); err != nil {
		return nil, err
	}
	tn, err := box.StartEgress(ctx, sandboxReporter{s, r}, sr, true)
	if err != nil {
		box.StopEgress(ctx, r.claim.Run.ID)
		return nil, fmt.Errorf("set up the task's network: %w", err)
	}
	spec := box.AgentSpec(sr)
	// The worker is the container's init, so no process the agent can reach
	// holds the container's stdout (see cmd/trakkar-worker).
	spec.OwnInit = true
	tn.Apply(&spec)
	creating := time.Now()
	id, err := s.createContainer(ctx, r, spec)
	if err != nil {
		box.StopEgress(ctx, r.claim.Run.ID)
		return nil, fmt.Errorf("create container: %w", err)
	}
	r.rec.ContainerID = id
	r.setPhase(phaseRunning)
	waitCh, err := s.rt.Start(ctx, id)
	if err != nil {
		s.removeContainer(ctx, r, id)
		return nil, fmt.Errorf("start container: %w", err)
	}
	s.metrics.ContainerStarted(time.Since(creating))
	r.setupEnded()
	if resumed {
		r.status("Container started (%s); resuming the agent's session %s", s.cfg.Image, job.SessionID)
	} else {
		r.status("Container started (%s)", s.cfg.Image)
	}
	return s.supervise(ctx, r, ws, id, waitCh, logPos{})
}

func (s *Supervisor) removeContainer(ctx context.Context, r *run, id string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.rt.Remove(cctx, id); err != nil {
		r.log.Warn("remove container", zap.String("container_id", shortID(id)), zap.Error(err))
	}
}

// supervise follows a started container's output from since (its line number:
// the last one delivered before, 0 when unknown), stops it on Stop, drain or
// lease loss, and returns how it ended. It removes the container once its
// output and result are safe, unless the supervisor is aborting.
func (s *Supervisor) supervise(ctx context.Context, r *run, ws *workspace, id string,
	waitCh <-chan docker.WaitResult, since logPos) (*agentRun, error) {
	log := r.log.With(zap.String("container_id", shortID(id)))
	r.setState(trakkar.StateRunning)
	nums := &lineNumbers{last: since.N, known: since.N > 0 || since.At.IsZero()}
	key, _ := hex.DecodeString(r.rec.EventKey)
	ce, err := s.runContainer(ctx, r, id, waitCh, runOpts{
		what:   "container",
		since:  since.At,
		record: true,
		watch:  ws,
		stdout: s.workerLines(r, log, key, nums),
		// The container's stderr is the CLI's, forwarded: never an event of
		// the worker's, whatever it looks like.
		stderr: func(line []byte, add func(trakkar.Event, logPos)) {
			at, text := splitStamp(line)
			add(r.event(trakkar.EventLog, string(text), map[string]any{"stream": "stderr"}), logPos{At: at})
		},
	})
	if err != nil {
		return nil, err
	}
	if ce.end == endAborted {
		return &agentRun{end: endAborted}, nil
	}
	ar := &agentRun{end: ce.end, exit: ce.exit}
	log.Info("container exited", zap.Int("exit_code", ar.exit.Code), zap.Bool("oom_killed", ar.exit.OOMKilled))
	ar.result = s.resultOf(r, ws)
	if nums.known { // runContainer has joined the log follower: nums is final
		s.reportTailLoss(r, ar.result, key, nums.last)
	}
	if ar.result != nil && ar.result.SessionID != "" {
		if err := saveSession(ws, session{Provider: s.cfg.Provider, ID: ar.result.SessionID}); err != nil {
			log.Warn("keep agent session", zap.Error(err))
		}
	}
	if ar.end != endLost {
		if !s.outputAcked(ctx, r) {
			return &agentRun{end: endAborted}, nil
		}
		r.setPhase(phaseFinishing)
	}
	err = s.containerGone(ctx, r, ws, id)
	s.box().StopEgress(ctx, r.claim.Run.ID)
	if err != nil {
		return nil, err
	}
	return ar, nil
}

// workerLines reads the worker's stdout: only lines signed with the run's
// event key are the worker's; each carries its line number, checked in nums,
// so a gap or a repeat is seen.
func (s *Supervisor) workerLines(r *run, log *zap.Logger, key []byte, nums *lineNumbers) lineSink {
	var unsigned int64
	return func(line []byte, add func(trakkar.Event, logPos)) {
		at, text := splitStamp(line)
		if len(key) > 0 {
			var ok bool
			if text, ok = workerproto.Verify(key, text); !ok {
				// Not the worker's: the agent wrote into the container's
				// stdout. Say so (at the 1st, 10th, 100th… such line), never
				// what it said.
				unsigned++
				if isPowerOf10(unsigned) {
					log.Warn("unsigned lines on the worker's stdout", zap.Int64("count", unsigned))
					add(r.event(trakkar.EventError, unsignedText(unsigned), map[string]any{"unsigned_lines": unsigned}), logPos{At: at})
				}
				return
			}
		}
		l := workerproto.Parse(text, time.Now().UTC())
		lost, repeat := nums.check(l.N)
		if repeat {
			log.Warn("dropped a repeated worker line", zap.Int64("line", l.N))
			return
		}
		pos := logPos{At: at, N: l.N}
		if lost > 0 {
			log.Warn("worker lines lost", zap.Int64("lost", lost), zap.Int64("line", l.N))
			add(r.event(trakkar.EventError, lostText(lost), map[string]any{"lost_lines": lost}), pos)
		}
		add(r.event(l.Type, l.Text, l.Data), pos)
	}
}

// containerGone removes an ended container of the task (agent or verify) and
// then clears the unsafe modes it left in the task's host folders.
func (s *Supervisor) containerGone(ctx context.Context, r *run, ws *workspace, id string) error {
	s.removeContainer(ctx, r, id)
	if err := s.box().ClearUnsafeModes(sandboxRun(r, ws)); err != nil {
		r.log.Error("unsafe file modes left on the host", zap.String("container_id", shortID(id)), zap.Error(err))
		return err
	}
	return nil
}

// splitStamp separates the engine's timestamp from a log line.
func splitStamp(line []byte) (time.Time, []byte) {
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		return time.Time{}, line
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[:i]))
	if err != nil {
		return time.Time{}, line
	}
	return t, joinPartials(line[i+1:])
}

// readResult reads the worker's result; a missing or malformed file is nil and
// the exit code decides.
func readResult(dir string) *workerproto.Result {
	// The agent can leave anything at this path: a symlink to a host file, or a
	// FIFO whose open would block this run forever. Open without following
	// links or blocking, and read only a regular file.
	f, err := os.OpenFile(filepath.Join(dir, workerproto.ResultFile), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	var res workerproto.Result
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&res); err != nil {
		return nil
	}
	return &res
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// lineWriter splits a byte stream into lines and hands each to fn. Lines longer
// than maxLine are cut, so a runaway agent cannot grow the buffer without bound.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func([]byte)
}

const maxLine = 1 << 20

func newLineWriter(fn func([]byte)) *lineWriter { return &lineWriter{fn: fn} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) > maxLine {
				w.fn(append([]byte(nil), w.buf[:maxLine]...))
				w.buf = append(w.buf[:0], w.buf[maxLine-lineOverlap:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) emit() {
	line := w.buf
	if len(line) > maxLine {
		line = line[:maxLine]
	}
	if len(strings.TrimSpace(string(line))) > 0 {
		w.fn(append([]byte(nil), line...))
	}
	w.buf = w.buf[:0]
}

// Close hands over a final line that had no newline.
func (w *lineWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit()
	}
}

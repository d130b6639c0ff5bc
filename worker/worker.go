// Package worker is the container entrypoint's logic: it reads the job, runs the
// agent CLI in the workspace, translates the CLI's output into event lines on
// stdout, writes the result file, and exits with a code from the event package.
package worker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// Config locates the worker's inputs and outputs. Empty directories come from
// TRAKKAR_IN_DIR / TRAKKAR_OUT_DIR / TRAKKAR_WORKSPACE in Env, then from the
// container defaults.
type Config struct {
	InDir, OutDir, Workspace string
	Stdout, Stderr           io.Writer
	// Env is the worker's environment; the CLI gets a filtered copy.
	Env []string
	// LookPath resolves the CLI; by default it searches PATH from Env.
	LookPath func(string) (string, error)

	killAfter time.Duration // SIGTERM → SIGKILL grace; tests shorten it
}

const defaultKillAfter = 10 * time.Second

func (c Config) withDefaults() Config {
	pick := func(v, envKey, def string) string {
		if v != "" {
			return v
		}
		if e, ok := envValue(c.Env, envKey); ok && e != "" {
			return e
		}
		return def
	}
	c.InDir = pick(c.InDir, "TRAKKAR_IN_DIR", workerproto.InDir)
	c.OutDir = pick(c.OutDir, "TRAKKAR_OUT_DIR", workerproto.OutDir)
	c.Workspace = pick(c.Workspace, "TRAKKAR_WORKSPACE", workerproto.Workspace)
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	if c.LookPath == nil {
		path, ok := envValue(c.Env, "PATH")
		if !ok {
			path = defaultPath // what the CLI gets, see the providers' Env
		}
		c.LookPath = lookPathIn(path)
	}
	if c.killAfter <= 0 {
		c.killAfter = defaultKillAfter
	}
	return c
}

// Run executes one job and returns the process exit code.
func Run(ctx context.Context, cfg Config) int {
	cfg = cfg.withDefaults()
	w := &run{cfg: cfg}
	return w.execute(ctx)
}

type run struct {
	cfg Config
	mu  sync.Mutex // serializes stdout writes and numbering
	n   int64      // number of the last line written
	key []byte     // signs every line (see workerproto.Sign); nil: lines go unsigned
	job workerproto.Job
}

func (w *run) emit(l workerproto.Line) {
	if l.At.IsZero() {
		l.At = time.Now().UTC()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	l.N = w.n
	b := l.Encode()
	if w.key != nil {
		b = workerproto.Sign(w.key, b)
	}
	_, _ = w.cfg.Stdout.Write(b) // nowhere to report a broken stdout
}

func (w *run) execute(ctx context.Context) int {
	key, err := takeKey(filepath.Join(w.cfg.OutDir, workerproto.KeyFile))
	if err != nil {
		return w.fail(workerproto.ExitUsage, ClassBadJob, err.Error())
	}
	w.key = key
	job, err := readJob(filepath.Join(w.cfg.InDir, workerproto.JobFile))
	if err != nil {
		return w.fail(workerproto.ExitUsage, ClassBadJob, err.Error())
	}
	w.job = job
	p, err := lookupProvider(job.Provider)
	if err != nil {
		return w.fail(workerproto.ExitUsage, ClassBadJob, "bad job: "+err.Error())
	}
	if err := p.Validate(job); err != nil {
		return w.fail(workerproto.ExitUsage, ClassBadJob, "bad job: "+err.Error())
	}
	if fi, err := os.Stat(w.cfg.Workspace); err != nil || !fi.IsDir() {
		return w.fail(workerproto.ExitUsage, ClassBadJob, fmt.Sprintf("workspace %s is not a directory", w.cfg.Workspace))
	}
	bin, err := w.cfg.LookPath(p.Binary())
	if err != nil {
		return w.fail(workerproto.ExitCLIMissing, ClassCLIMissing, p.Binary()+" CLI not found in the image")
	}
	if ctx.Err() != nil {
		return w.finish(workerproto.Result{Outcome: workerproto.OutcomeStopped, SessionID: job.SessionID}, workerproto.ExitStopped)
	}

	w.emit(workerproto.Line{Type: workerproto.TypeStatus, Text: "Running " + p.Binary()})
	parser := p.NewParser(job, w.cfg.Workspace, func() time.Time { return time.Now().UTC() })
	spec := cliSpec{
		Path:      bin,
		Args:      append([]string{p.Binary()}, p.Args(job)...),
		Dir:       w.cfg.Workspace,
		Env:       p.Env(w.cfg.Env),
		Stdin:     p.Stdin(job),
		Stderr:    newStderrLimit(w.cfg.Stderr, stderrRate, stderrBurst, time.Now),
		KillAfter: w.cfg.killAfter,
	}
	exit, stopped, err := runCLI(ctx, spec,
		func(raw []byte) { parser.Line(raw, w.emit) },
		func(n int) {
			w.emit(workerproto.Line{Type: workerproto.TypeLog, Text: fmt.Sprintf("skipped an output line of %d bytes (too long)", n)})
		})
	if err != nil {
		return w.fail(workerproto.ExitCLICrashed, ClassCrashed, fmt.Sprintf("start %s: %v", p.Binary(), err))
	}
	res, code, class := parser.Finish(exit)
	if stopped {
		res.Outcome, res.Error = workerproto.OutcomeStopped, ""
		return w.finish(res, workerproto.ExitStopped)
	}
	if res.Outcome == workerproto.OutcomeFailed {
		w.emit(workerproto.Line{Type: workerproto.TypeError, Text: cleanText(res.Error, maxText), Data: map[string]any{"class": class}})
	}
	return w.finish(res, code)
}

// Classes of failures outside the agent run (data.class on the error event).
const (
	ClassBadJob     = "bad_job"
	ClassCLIMissing = "cli_missing"
)

// fail reports a failure that happened outside the agent run.
func (w *run) fail(code int, class, msg string) int {
	fmt.Fprintln(w.cfg.Stderr, "trakkar-worker: "+msg)
	w.emit(workerproto.Line{Type: workerproto.TypeError, Text: cleanText(msg, maxText), Data: map[string]any{"class": class}})
	return w.finish(workerproto.Result{Outcome: workerproto.OutcomeFailed, Error: msg, SessionID: w.job.SessionID}, code)
}

// finish writes the result and returns code; a result that cannot be written
// leaves the supervisor with the exit code alone.
func (w *run) finish(res workerproto.Result, code int) int {
	w.mu.Lock()
	res.Lines = w.n
	if w.key != nil {
		res.LinesSig = workerproto.SignCount(w.key, w.n)
	}
	w.mu.Unlock()
	if err := writeResult(w.cfg.OutDir, res); err != nil {
		fmt.Fprintln(w.cfg.Stderr, "trakkar-worker: "+err.Error())
	}
	return code
}

// takeKey reads the line-signing key and removes its file, before the agent
// exists, so that only this process's memory holds it. No file: no key.
func takeKey(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the event key: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read the event key: %w", err)
	}
	// Refuse to run rather than leave the key where the agent can read it.
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("remove the event key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 16 {
		return nil, errors.New("bad event key file")
	}
	return key, nil
}

func readJob(path string) (workerproto.Job, error) {
	var job workerproto.Job
	b, err := os.ReadFile(path)
	if err != nil {
		return job, fmt.Errorf("read job: %w", err)
	}
	if err := json.Unmarshal(b, &job); err != nil {
		return job, fmt.Errorf("bad job file %s: %w", path, err)
	}
	if job.Provider == "" {
		return job, errors.New("bad job: no provider")
	}
	return job, nil
}

// writeResult replaces OutDir/result.json atomically so the supervisor never
// reads half a file.
func writeResult(dir string, res workerproto.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	f, err := os.CreateTemp(dir, ".result-*.json")
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(dir, workerproto.ResultFile))
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write result: %w", werr)
	}
	return nil
}

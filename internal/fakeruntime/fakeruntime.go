// Package fakeruntime is an in-memory container runtime for tests of the
// supervisor's phase machine: no engine, no processes. Containers follow a
// Script (print these worker lines, write this result, then exit with a code,
// hang until stopped, ignore the stop signal, or be OOM-killed), and every call
// is recorded. It honours the contract in docs/runtime.md. Only tests import
// it.
package fakeruntime

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// Script is what one container does once started.
type Script struct {
	// Lines are the worker's lines, numbered and signed as the worker does:
	// with the key it takes (reads and removes) from the out folder's
	// workerproto.KeyFile, unsigned when there is none.
	Lines []workerproto.Line
	// Forged are raw lines written to stdout unsigned, as an agent forging
	// worker lines would.
	Forged []string
	// Stderr lines go to the container's stderr.
	Stderr []string
	// Result, when set, is written to the out folder's result file when the
	// script ends on its own (not when stopped or killed).
	Result *workerproto.Result
	// Files are written into the workspace mount (path relative to it).
	Files map[string]string
	// Exit is the exit code when the script ends on its own.
	Exit int
	// Hang keeps the container running after its output until it is stopped
	// (or Release is closed).
	Hang bool
	// Release, when Hang, ends the hang as if the script ended on its own.
	Release <-chan struct{}
	// IgnoreTerm makes Stop wait out the grace and kill (exit 137).
	IgnoreTerm bool
	// OOM ends the container at once as killed for memory (exit 137).
	OOM bool
}

// Call is one recorded call.
type Call struct {
	Op string // method name
	ID string // container id, network id or volume name; the spec's name for Create
}

// ErrNotFound is returned for an unknown container.
var ErrNotFound = errors.New("no such container")

// Runtime is the fake. Set Script before use; OnCreate, when set, sees every
// spec first (a test may panic there to crash one run).
type Runtime struct {
	Script   func(docker.Spec) Script
	OnCreate func(docker.Spec)

	mu         sync.Mutex
	seq        int
	containers map[string]*container
	networks   map[string]docker.Network
	volumes    map[string]bool
	calls      []Call
	last       time.Time // last log timestamp handed out: strictly growing
}

type container struct {
	id      string
	spec    docker.Spec
	state   string // created, running, exited
	script  Script
	logs    []logLine
	changed chan struct{} // closed and replaced whenever logs or state change
	stopped chan struct{} // closed on the first Stop or Remove
	killed  chan struct{} // closed when the grace is over or on Remove
	done    chan struct{} // closed on exit
	status  docker.ExitStatus
	once    sync.Once
	kill    sync.Once
}

type logLine struct {
	at     time.Time
	stderr bool
	text   string
}

// New returns an empty runtime whose containers run script.
func New(script func(docker.Spec) Script) *Runtime {
	return &Runtime{Script: script, containers: map[string]*container{}, networks: map[string]docker.Network{}, volumes: map[string]bool{}}
}

func (r *Runtime) record(op, id string) {
	r.calls = append(r.calls, Call{Op: op, ID: id})
}

// Calls returns the calls made so far, in order.
func (r *Runtime) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Count is how many calls of op were made.
func (r *Runtime) Count(op string) int {
	n := 0
	for _, c := range r.Calls() {
		if c.Op == op {
			n++
		}
	}
	return n
}

// Running returns the ids of running containers whose labels include labels.
func (r *Runtime) Running(labels map[string]string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, c := range r.containers {
		if c.state == "running" && matches(c.spec.Labels, labels) {
			out = append(out, id)
		}
	}
	return out
}

// Spec returns the spec a container was created from.
func (r *Runtime) Spec(id string) (docker.Spec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return docker.Spec{}, false
	}
	return c.spec, true
}

// Volumes returns the names of the volumes that exist.
func (r *Runtime) Volumes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for v := range r.volumes {
		out = append(out, v)
	}
	return out
}

// Create records the spec; a taken name is an error, as with the engine.
func (r *Runtime) Create(ctx context.Context, s docker.Spec) (string, error) {
	if r.OnCreate != nil {
		r.OnCreate(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("Create", s.Name)
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("create container: %w", err)
	}
	for _, c := range r.containers {
		if s.Name != "" && c.spec.Name == s.Name {
			return "", fmt.Errorf("create container %s: name already in use", s.Name)
		}
	}
	for _, v := range s.Volumes {
		r.volumes[v.Name] = true
	}
	r.seq++
	id := fmt.Sprintf("fake%060d", r.seq)
	var sc Script
	if r.Script != nil {
		sc = r.Script(s)
	}
	r.containers[id] = &container{id: id, spec: s, state: "created", script: sc, changed: make(chan struct{}),
		stopped: make(chan struct{}), killed: make(chan struct{}), done: make(chan struct{})}
	return id, nil
}

func (r *Runtime) get(id string) (*container, error) {
	c, ok := r.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	return c, nil
}

// Start runs the container's script; the wait is in place before it runs.
func (r *Runtime) Start(ctx context.Context, id string) (<-chan docker.WaitResult, error) {
	r.mu.Lock()
	r.record("Start", id)
	c, err := r.get(id)
	if err == nil && c.state != "created" {
		err = fmt.Errorf("start container %s: already %s", id, c.state)
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("start container %s: %w", id, ctx.Err())
	}
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	c.state = "running"
	r.notify(c)
	r.mu.Unlock()

	out := make(chan docker.WaitResult, 1)
	go func() {
		defer close(out)
		select {
		case <-c.done:
			r.mu.Lock()
			st := c.status
			r.mu.Unlock()
			out <- docker.WaitResult{Status: st}
		case <-ctx.Done():
			out <- docker.WaitResult{Err: fmt.Errorf("wait for container %s: %w", id, ctx.Err())}
		}
	}()
	go r.run(c)
	return out, nil
}

// run plays the script, as the worker would inside the container.
func (r *Runtime) run(c *container) {
	sc := c.script
	out, ws := mountOf(c.spec, workerproto.OutDir), mountOf(c.spec, workerproto.Workspace)
	var key []byte
	if out != "" {
		kp := filepath.Join(out, workerproto.KeyFile)
		if b, err := os.ReadFile(kp); err == nil {
			_ = os.Remove(kp)
			key, _ = hex.DecodeString(strings.TrimSpace(string(b)))
		}
	}
	if sc.OOM {
		r.exit(c, docker.ExitStatus{Code: 137, OOMKilled: true})
		return
	}
	for p, body := range sc.Files {
		if ws == "" {
			continue
		}
		path := filepath.Join(ws, p)
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		_ = os.WriteFile(path, []byte(body), 0o644)
	}
	for i, l := range sc.Lines {
		l.N = int64(i + 1)
		if l.At.IsZero() {
			l.At = time.Now().UTC()
		}
		b := l.Encode()
		if key != nil {
			b = workerproto.Sign(key, b)
		}
		r.log(c, false, strings.TrimSuffix(string(b), "\n"))
	}
	for _, f := range sc.Forged {
		r.log(c, false, f)
	}
	for _, l := range sc.Stderr {
		r.log(c, true, l)
	}
	if sc.Hang {
		select {
		case <-c.stopped:
			if sc.IgnoreTerm {
				<-c.killed
				r.exit(c, docker.ExitStatus{Code: 137})
				return
			}
			r.exit(c, docker.ExitStatus{Code: 143})
			return
		case <-c.killed:
			r.exit(c, docker.ExitStatus{Code: 137})
			return
		case <-sc.Release:
		}
	}
	// The worker writes its result last, when the agent ended on its own.
	if sc.Result != nil && out != "" {
		if b, err := json.Marshal(sc.Result); err == nil {
			_ = os.WriteFile(filepath.Join(out, workerproto.ResultFile), b, 0o644)
		}
	}
	r.exit(c, docker.ExitStatus{Code: sc.Exit})
}

func (r *Runtime) log(c *container, stderr bool, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := time.Now().UTC()
	if !at.After(r.last) {
		at = r.last.Add(time.Nanosecond)
	}
	r.last = at
	c.logs = append(c.logs, logLine{at: at, stderr: stderr, text: text})
	r.notify(c)
}

func (r *Runtime) exit(c *container, st docker.ExitStatus) {
	c.once.Do(func() {
		r.mu.Lock()
		c.status, c.state = st, "exited"
		r.notify(c)
		r.mu.Unlock()
		close(c.done)
	})
}

// notify wakes log followers; r.mu is held.
func (r *Runtime) notify(c *container) {
	close(c.changed)
	c.changed = make(chan struct{})
}

func mountOf(s docker.Spec, target string) string {
	for _, m := range s.Mounts {
		if m.Target == target {
			return m.Source
		}
	}
	return ""
}

// Logs copies the container's output without timestamps.
func (r *Runtime) Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error {
	return r.logs(ctx, "Logs", id, time.Time{}, false, follow, stdout, stderr)
}

// LogsSince copies the output from since on, each line stamped.
func (r *Runtime) LogsSince(ctx context.Context, id string, since time.Time, follow bool, stdout, stderr io.Writer) error {
	return r.logs(ctx, "LogsSince", id, since, true, follow, stdout, stderr)
}

func (r *Runtime) logs(ctx context.Context, op, id string, since time.Time, stamp, follow bool, stdout, stderr io.Writer) error {
	r.mu.Lock()
	r.record(op, id)
	c, err := r.get(id)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	next := 0
	for {
		r.mu.Lock()
		lines := c.logs[next:]
		next = len(c.logs)
		ended := c.state != "running" // a created container has no output to wait for
		changed := c.changed
		r.mu.Unlock()
		for _, l := range lines {
			if l.at.Before(since) {
				continue
			}
			text := l.text + "\n"
			if stamp {
				text = l.at.Format(time.RFC3339Nano) + " " + text
			}
			w := stdout
			if l.stderr {
				w = stderr
			}
			if _, err := io.WriteString(w, text); err != nil {
				return fmt.Errorf("logs of container %s: %w", id, err)
			}
		}
		// Every line logged before the exit is in c.logs by then.
		if !follow || ended {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("logs of container %s: %w", id, ctx.Err())
		}
	}
}

// Wait blocks until the container is not running; a created one is not.
func (r *Runtime) Wait(ctx context.Context, id string) (docker.ExitStatus, error) {
	r.mu.Lock()
	r.record("Wait", id)
	c, err := r.get(id)
	created := err == nil && c.state == "created"
	r.mu.Unlock()
	if err != nil {
		return docker.ExitStatus{}, err
	}
	if created {
		// Not running: the engine answers at once, as for an exited one.
		return docker.ExitStatus{}, nil
	}
	select {
	case <-c.done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return c.status, nil
	case <-ctx.Done():
		return docker.ExitStatus{}, fmt.Errorf("wait for container %s: %w", id, ctx.Err())
	}
}

// List returns containers in every state carrying labels.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]docker.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("List", "")
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []docker.Container
	for _, c := range r.containers {
		if matches(c.spec.Labels, labels) {
			out = append(out, docker.Container{ID: c.id, Name: c.spec.Name, Image: c.spec.Image, State: c.state, Labels: c.spec.Labels})
		}
	}
	return out, nil
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

// Stop signals the container and kills it after grace; gone or stopped is fine.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	r.record("Stop", id)
	c, err := r.get(id)
	created := err == nil && c.state == "created"
	r.mu.Unlock()
	if err != nil || created {
		return nil
	}
	c.kill.Do(func() {
		close(c.stopped)
		go func() {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-t.C:
				close(c.killed)
			case <-c.done:
			}
		}()
	})
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop container %s: %w", id, ctx.Err())
	}
}

// Remove kills and forgets the container; gone is fine.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	r.record("Remove", id)
	c, err := r.get(id)
	if err != nil {
		r.mu.Unlock()
		return nil
	}
	delete(r.containers, id)
	running := c.state == "running"
	r.mu.Unlock()
	if running {
		r.exit(c, docker.ExitStatus{Code: 137})
	}
	return nil
}

// CreateNetwork records a network.
func (r *Runtime) CreateNetwork(ctx context.Context, name string, internal bool, labels map[string]string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("CreateNetwork", name)
	r.seq++
	id := fmt.Sprintf("net%d", r.seq)
	r.networks[id] = docker.Network{ID: id, Name: name, Internal: internal, Labels: labels}
	return id, nil
}

// RemoveNetwork forgets a network; gone is fine.
func (r *Runtime) RemoveNetwork(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("RemoveNetwork", id)
	delete(r.networks, id)
	return nil
}

// Connect checks that both ends exist.
func (r *Runtime) Connect(ctx context.Context, networkID, containerID string, aliases []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("Connect", containerID)
	if _, ok := r.networks[networkID]; !ok {
		return fmt.Errorf("connect: no network %s", networkID)
	}
	_, err := r.get(containerID)
	return err
}

// ListNetworks returns networks carrying labels.
func (r *Runtime) ListNetworks(ctx context.Context, labels map[string]string) ([]docker.Network, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("ListNetworks", "")
	var out []docker.Network
	for _, n := range r.networks {
		if matches(n.Labels, labels) {
			out = append(out, n)
		}
	}
	return out, nil
}

// RemoveVolume forgets a volume; gone is fine, in use is an error.
func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("RemoveVolume", name)
	for _, c := range r.containers {
		for _, v := range c.spec.Volumes {
			if v.Name == name {
				return fmt.Errorf("remove volume %s: in use by %s", name, c.id)
			}
		}
	}
	delete(r.volumes, name)
	return nil
}

package worker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// provider adapts one agent CLI: how to invoke it and how to read its output.
// Each provider lives in its own file and registers itself in init, so adding
// one is a one-file change.
type provider interface {
	// Binary is the CLI's executable name, looked up on PATH.
	Binary() string
	// Validate rejects a job this provider cannot run.
	Validate(job workerproto.Job) error
	// Args is the argv after the binary name.
	Args(job workerproto.Job) []string
	// Stdin is what the CLI reads on stdin (the prompt, for most CLIs).
	Stdin(job workerproto.Job) string
	// Env builds the CLI's environment from the worker's.
	Env(workerEnv []string) []string
	// NewParser returns a parser for one run's output.
	NewParser(job workerproto.Job, workspace string, now func() time.Time) streamParser
}

// streamParser turns the CLI's stdout into events and, at the end, a Result.
type streamParser interface {
	// Line handles one stdout line (no newline, never blank).
	Line(raw []byte, emit func(workerproto.Line))
	// Finish classifies the run after the CLI exited and stdout was drained. It
	// returns the result, the worker's exit code and, for a failure, its class
	// (never ExitStopped: the caller handles stops).
	Finish(exit processExit) (res workerproto.Result, code int, class string)
}

// processExit describes how the CLI ended.
type processExit struct {
	Code       int    // exit status; -1 when killed by a signal
	StderrTail string // last lines of stderr
}

var providers = map[string]provider{}

func registerProvider(name string, p provider) {
	if _, dup := providers[name]; dup {
		panic("worker: provider registered twice: " + name)
	}
	providers[name] = p
}

func lookupProvider(name string) (provider, error) {
	if p, ok := providers[name]; ok {
		return p, nil
	}
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown provider %q (supported: %s)", name, strings.Join(names, ", "))
}

// envFilter keeps the variables of env whose names are in allow, later entries
// winning like they do for exec.
func envFilter(env []string, allow map[string]bool) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !allow[k] {
			continue
		}
		if i, seen := idx[k]; seen {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// envValue returns the last value of key in env.
func envValue(env []string, key string) (string, bool) {
	val, found := "", false
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}

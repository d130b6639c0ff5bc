package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runnerLock is an exclusive flock held for the life of the process. The
// kernel drops it when the process dies, however it dies, so a SIGKILLed
// runner's restart takes it again and adopts its runs; a second live process
// with the same runner id would adopt (and stop) the first one's containers.
type runnerLock struct{ files []*os.File }

func (l *runnerLock) release() {
	for _, f := range l.files {
		_ = f.Close() // closing the last descriptor drops the flock
	}
}

// lockRunner takes the runner id's lock in the repository's worktree folder
// and, for an id set with TRAKKAR_RUNNER_ID (which could be reused from
// another clone), also a host-wide one in stateDir. A held lock is bad input:
// one line naming the holder and what to do.
func lockRunner(worktreeRoot, stateDir, id string, explicit bool) (*runnerLock, error) {
	name := lockName(id)
	l := &runnerLock{}
	if err := os.MkdirAll(worktreeRoot, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", worktreeRoot, err)
	}
	held, err := l.take(filepath.Join(worktreeRoot, "."+name))
	if err != nil {
		return nil, err
	}
	if held != "" {
		return nil, badInput("another trakkar-agent (%s) is already working this repository; stop it first, "+
			"or run this one in another clone of the repository (or with its own TRAKKAR_RUNNER_ID)", held)
	}
	if explicit {
		dir := filepath.Join(stateDir, "runners")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			l.release()
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		held, err := l.take(filepath.Join(dir, name))
		if err != nil || held != "" {
			l.release()
		}
		if err != nil {
			return nil, err
		}
		if held != "" {
			return nil, badInput("another trakkar-agent (%s) already runs as TRAKKAR_RUNNER_ID %q on this host; "+
				"stop it first, or give each runner its own TRAKKAR_RUNNER_ID", held, id)
		}
	}
	return l, nil
}

// lockName is the file name of runner id's lock; the one in the worktree
// folder is hidden (a dot before it).
func lockName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "runner-" + hex.EncodeToString(sum[:8]) + ".lock"
}

// take locks path without waiting. When another process holds it, it returns
// who ("pid N") and no error.
func (l *runnerLock) take(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("open runner lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return holder(f), nil
		}
		return "", fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is only for the message a second runner prints.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	l.files = append(l.files, f)
	return "", nil
}

func holder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
		return "pid " + strconv.Itoa(pid)
	}
	return "pid unknown"
}

// lockHolder reports who holds the runner id's lock ("" when nobody does),
// without taking it or creating anything: doctor's read-only look.
func lockHolder(worktreeRoot, stateDir, id string, explicit bool) (string, error) {
	name := lockName(id)
	paths := []string{filepath.Join(worktreeRoot, "."+name)}
	if explicit {
		paths = append(paths, filepath.Join(stateDir, "runners", name))
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("open runner lock %s: %w", p, err)
		}
		// A shared lock conflicts only with a runner's exclusive one.
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		held := ""
		if errors.Is(err, syscall.EWOULDBLOCK) {
			held = holder(f)
		}
		f.Close()
		if held != "" {
			return held, nil
		}
		if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
			return "", fmt.Errorf("lock %s: %w", p, err)
		}
	}
	return "", nil
}

//go:build linux

package fakeagent

import (
	"os"
	"path/filepath"
	"syscall"
)

// modeDirs are the folders the runner mounts read-write from the host.
var modeDirs = func() []string {
	return []string{"/workspace", sandboxPaths.state, "/trakkar/git", sandboxPaths.out}
}

// outLockSentinel, in the state folder, says an earlier run already locked the
// out folder, so a later run of the task lets its worker write the result.
const outLockSentinel = ".trakkar-out-locked"

// attackSetuid leaves files with setuid/setgid, sticky and world-writable
// modes in every host folder the container writes, one of them behind a
// folder with no permissions; outside the worktree also a FIFO and a symlink
// to target. The first run then makes the out folder read-only (0555).
func attackSetuid(p *probe, a attack) {
	target := a.str("target")
	for _, d := range modeDirs() {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			p.info("%s is not mounted", d)
			continue
		}
		base := filepath.Join(d, ".trakkar-modes")
		if d != "/workspace" {
			base = d
		}
		hidden := filepath.Join(base, "trakkar-hidden")
		if err := os.MkdirAll(hidden, 0o755); err != nil {
			p.info("mkdir %s: %v", hidden, err)
			continue
		}
		_ = os.Chmod(hidden, 0o755) // an earlier run's lock, when the host left it

		plantMode(p, filepath.Join(base, "trakkar-suid"), 0o6755|os.ModeSetuid|os.ModeSetgid)
		plantMode(p, filepath.Join(base, "trakkar-sticky-ww"), 0o777|os.ModeSticky)
		plantMode(p, filepath.Join(hidden, "trakkar-suid"), 0o4755|os.ModeSetuid)
		// A folder the owner itself cannot list hides its content from a walk
		// that does not open it up first.
		if err := syscall.Chmod(hidden, 0o2000); err == nil {
			p.planted("%s mode 2000", hidden)
		}
		if d == "/workspace" {
			continue // the change must stay publishable
		}
		fifo := filepath.Join(d, "trakkar-fifo")
		_ = os.Remove(fifo)
		if err := syscall.Mkfifo(fifo, 0o666); err == nil && syscall.Chmod(fifo, 0o6777) == nil {
			p.planted("%s FIFO mode 6777", fifo)
		}
		if target != "" {
			link := filepath.Join(d, "trakkar-link")
			_ = os.Remove(link)
			if err := os.Symlink(target, link); err == nil {
				p.planted("%s -> %s", link, target)
			}
		}
	}
	sentinel := filepath.Join(sandboxPaths.state, outLockSentinel)
	if _, err := os.Lstat(sentinel); err == nil {
		p.info("an earlier run locked %s; this run leaves it writable", sandboxPaths.out)
		return
	}
	_ = os.WriteFile(sentinel, nil, 0o644)
	if err := os.Chmod(sandboxPaths.out, 0o555); err != nil {
		p.info("chmod 0555 %s: %v", sandboxPaths.out, err)
		return
	}
	p.planted("%s mode 0555", sandboxPaths.out)
}

// plantMode writes a small script at path and gives it mode.
func plantMode(p *probe, path string, mode os.FileMode) {
	if err := os.WriteFile(path, []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
		p.info("write %s: %v", path, err)
		return
	}
	if err := os.Chmod(path, mode); err != nil {
		p.info("chmod %s: %v", path, err)
		return
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err == nil {
		p.planted("%s mode %o", path, st.Mode&0o7777)
	}
}

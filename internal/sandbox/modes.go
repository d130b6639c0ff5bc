package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// A task's container writes host folders as the container user: a setuid or
// setgid file it leaves there runs, for any local user, as that uid (or gid).
// After every container the supervisor takes such bits off everything the
// container could write, and before every agent run it gives the worker a
// fresh out folder (a read-only one left by an earlier run breaks the next).

// writableDirs are the host folders a task's containers can write: the
// worktree, the agent's state, its git folder, the out folder and the writable
// layers of the shared folders.
func (b *Sandbox) writableDirs(r Run) []string {
	dirs := []string{r.Worktree, r.OutDir, r.AgentDir, r.GitDir}
	for _, sh := range b.shares(r) {
		dirs = append(dirs, sh.upper)
	}
	return dirs
}

// ClearUnsafeModes walks the task's writable folders. Call it only once no
// container of the task runs: nothing can then swap an entry between the
// lstat and the chmod.
func (b *Sandbox) ClearUnsafeModes(r Run) error {
	var errs []error
	for _, d := range b.writableDirs(r) {
		if d == "" {
			continue
		}
		if err := clearModesUnder(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clear unsafe file modes the container left: %w", err)
	}
	return nil
}

// clearModesUnder takes setuid and setgid bits, world write, and (on
// anything but a folder) the sticky bit off every entry under root, and gives
// every folder's owner rwx so that no folder hides its content from this walk
// or from a later removal. Symlinks are never followed nor changed; a FIFO or
// socket is changed by path, never opened. A missing root is fine.
func clearModesUnder(root string) error {
	var errs []error
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("lstat %s: %w", p, err))
			}
			return nil
		}
		typ := st.Mode & syscall.S_IFMT
		if typ == syscall.S_IFLNK {
			return nil
		}
		perm := st.Mode & 0o7777
		want := safeMode(perm, typ == syscall.S_IFDIR)
		if want == perm {
			return nil
		}
		if err := syscall.Chmod(p, want); err != nil {
			// Not ours to change: a file that keeps a setuid bit must go.
			if perm&(syscall.S_ISUID|syscall.S_ISGID) != 0 && typ != syscall.S_IFDIR && os.Remove(p) == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("chmod %s: %w", p, err))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// safeMode is perm without setuid, setgid and world write, without sticky on
// anything but a folder, and with owner rwx on a folder.
func safeMode(perm uint32, dir bool) uint32 {
	want := perm &^ (syscall.S_ISUID | syscall.S_ISGID | 0o002)
	if dir {
		return want | 0o700
	}
	return want &^ syscall.S_ISVTX
}

// ResetDir empties dir, whatever modes were left inside it, and creates it
// again with mode 0755. A symlink at dir is removed, never followed.
func ResetDir(dir string) error {
	if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		if err := clearModesUnder(dir); err != nil {
			return fmt.Errorf("reset %s: %w", dir, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("reset %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reset %s: %w", dir, err)
	}
	return nil
}

//go:build unix

package secretscan

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// openBeneath opens root/rel for reading one component at a time, refusing a
// symlink anywhere (O_NOFOLLOW on every component), "..", and anything but a
// regular file at the end, without blocking on a FIFO.
func openBeneath(root, rel string) (*os.File, error) {
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("unsafe path component %q", p)
		}
	}
	dir, err := syscall.Open(root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open worktree: %w", err)
	}
	for _, p := range parts[:len(parts)-1] {
		next, err := syscall.Openat(dir, p, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		syscall.Close(dir)
		if err != nil {
			return nil, fmt.Errorf("open folder: %w", err)
		}
		dir = next
	}
	fd, err := syscall.Openat(dir, parts[len(parts)-1], syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	syscall.Close(dir)
	if err != nil {
		return nil, fmt.Errorf("open file: %w", err)
	}
	f := os.NewFile(uintptr(fd), rel)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	return f, nil
}

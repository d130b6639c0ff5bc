package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
)

// watchdogInterval is how often a running container's host folders are measured.
// A var so a test can shorten it.
var watchdogInterval = 2 * time.Second

// diskWatch measures, while a container runs, everything it can write on the
// host (the worktree and the task's state folder: out, agent state, agent git)
// and reports when the total passes the cap. No quota is needed: XFS/ext4
// project quotas would be exact, but need a file system mounted with them.
type diskWatch struct {
	limit  int64 // bytes; <= 0 means no cap
	dirs   []string
	over   chan struct{} // closed once the cap is passed
	done   chan struct{} // closed when the loop has ended
	cancel context.CancelFunc
	log    *zap.Logger
}

// watchDisk starts measuring ws every watchdogInterval until stop. With no cap
// it measures nothing and over never fires.
func (s *Supervisor) watchDisk(ctx context.Context, ws *workspace, log *zap.Logger) *diskWatch {
	w := &diskWatch{
		limit: s.cfg.MaxWorkspaceMB << 20,
		dirs:  []string{ws.wt.Path, ws.stateDir},
		over:  make(chan struct{}),
		done:  make(chan struct{}),
		log:   log,
	}
	if w.limit <= 0 {
		w.cancel = func() {}
		close(w.done)
		return w
	}
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	go w.loop(wctx)
	return w
}

func (w *diskWatch) loop(ctx context.Context) {
	defer close(w.done)
	wait := watchdogInterval
	for {
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
		start := time.Now()
		if w.check(ctx) {
			return
		}
		// A huge tree makes each walk slow: pause at least four walks' time
		// between two, so the watchdog never takes more than a fifth of a core.
		wait = max(watchdogInterval, 4*time.Since(start))
	}
}

// check measures once and closes over when past the cap; it reports whether it did.
func (w *diskWatch) check(ctx context.Context) bool {
	size, err := diskUsage(ctx, w.dirs, w.limit)
	if err != nil && ctx.Err() == nil {
		// What could not be read is not counted; say so rather than stop a run.
		w.log.Warn("measure the workspace", zap.Error(err))
	}
	if size <= w.limit {
		return false
	}
	w.log.Warn("the workspace grew past the cap; stopping the container",
		zap.Int64("bytes", size), zap.Int64("limit_bytes", w.limit))
	select {
	case <-w.over:
	default:
		close(w.over)
	}
	return true
}

// Over fires once the workspace passed the cap.
func (w *diskWatch) Over() <-chan struct{} { return w.over }

// exceeded reports whether the cap was passed.
func (w *diskWatch) exceeded() bool {
	select {
	case <-w.over:
		return true
	default:
		return false
	}
}

// stop ends the loop. When final, it measures once more after the container
// has ended, so a burst between two ticks is not missed.
func (w *diskWatch) stop(ctx context.Context, final bool) {
	w.cancel()
	<-w.done
	if final && w.limit > 0 && !w.exceeded() {
		w.check(ctx)
	}
}

// diskFullReason is the run's failure when the watchdog stopped it.
func (s *Supervisor) diskFullReason() string {
	return fmt.Sprintf("the workspace grew past --max-workspace-mb (%d MiB)", s.cfg.MaxWorkspaceMB)
}

// diskUsage adds up what dirs hold on disk, walking with lstat only (a symlink
// counts as itself, never as its target) and stopping early once past limit. A
// file counts as the larger of its length and its allocated blocks, so a sparse
// file that host git would read in full counts at its length. Entries that
// vanish during the walk are skipped; other errors are returned after the walk.
func diskUsage(ctx context.Context, dirs []string, limit int64) (int64, error) {
	var total int64
	var errs []error
	stopWalk := errors.New("past the limit")
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) && len(errs) < 3 {
					errs = append(errs, err)
				}
				return nil // an unreadable folder is skipped, not fatal
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fi, err := d.Info()
			if err != nil {
				return nil // gone since it was listed
			}
			n := fi.Size()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > n {
				n = st.Blocks * 512
			}
			total += n
			if limit > 0 && total > limit {
				return stopWalk
			}
			return nil
		})
		if errors.Is(err, stopWalk) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	return total, errors.Join(errs...)
}

package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

func writeSized(t *testing.T, path string, n int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDiskUsage(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir, outside string)
		limit   int64
		atLeast int64
		atMost  int64
	}{
		{"files in nested folders", func(t *testing.T, dir, _ string) {
			writeSized(t, filepath.Join(dir, "a"), mib)
			writeSized(t, filepath.Join(dir, "x", "y", "b"), 2*mib)
		}, 0, 3 * mib, 3*mib + 64<<10},
		{"sparse file counts at its length", func(t *testing.T, dir, _ string) {
			f, err := os.Create(filepath.Join(dir, "sparse"))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(512 * mib); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}, 0, 512 * mib, 512*mib + 64<<10},
		{"symlink counts as itself, not its target", func(t *testing.T, dir, outside string) {
			writeSized(t, filepath.Join(outside, "big"), 8*mib)
			if err := os.Symlink(outside, filepath.Join(dir, "dirlink")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(outside, "big"), filepath.Join(dir, "filelink")); err != nil {
				t.Fatal(err)
			}
		}, 0, 0, 64 << 10},
		{"stops early past the limit", func(t *testing.T, dir, _ string) {
			for _, n := range []string{"a", "b", "c", "d"} {
				writeSized(t, filepath.Join(dir, n), mib)
			}
		}, mib + 1, mib + 2, 3 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			tc.setup(t, dir, outside)
			got, err := diskUsage(context.Background(), []string{dir, filepath.Join(dir, "missing")}, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got < tc.atLeast || got > tc.atMost {
				t.Errorf("diskUsage = %d, want %d..%d", got, tc.atLeast, tc.atMost)
			}
		})
	}
}

func TestDiskWatchFiresPastTheCap(t *testing.T) {
	old := watchdogInterval
	watchdogInterval = 50 * time.Millisecond
	t.Cleanup(func() { watchdogInterval = old })
	root := t.TempDir()
	ws := &workspace{wt: hostgit.Worktree{Path: filepath.Join(root, "wt")}, stateDir: filepath.Join(root, "state")}
	writeSized(t, filepath.Join(ws.wt.Path, "README"), 1<<10)
	s := &Supervisor{cfg: Config{MaxWorkspaceMB: 1}}
	dw := s.watchDisk(context.Background(), ws, zap.NewNop())
	select {
	case <-dw.Over():
		t.Fatal("fired under the cap")
	case <-time.After(300 * time.Millisecond):
	}
	writeSized(t, filepath.Join(ws.stateDir, "agent", "fill"), 2<<20)
	select {
	case <-dw.Over():
	case <-time.After(30 * time.Second): // bounds a failure only
		t.Fatal("did not fire past the cap")
	}
	dw.stop(context.Background(), true)
	if !dw.exceeded() {
		t.Error("exceeded() = false after firing")
	}

	// A burst between two ticks is caught by the final measurement.
	ws2 := &workspace{wt: hostgit.Worktree{Path: filepath.Join(root, "wt2")}, stateDir: filepath.Join(root, "state2")}
	watchdogInterval = time.Hour
	dw = s.watchDisk(context.Background(), ws2, zap.NewNop())
	writeSized(t, filepath.Join(ws2.wt.Path, "burst"), 2<<20)
	dw.stop(context.Background(), true)
	if !dw.exceeded() {
		t.Error("the final measurement missed the burst")
	}

	// No cap: nothing is measured and nothing fires.
	s.cfg.MaxWorkspaceMB = 0
	dw = s.watchDisk(context.Background(), ws2, zap.NewNop())
	dw.stop(context.Background(), true)
	if dw.exceeded() {
		t.Error("fired without a cap")
	}
}

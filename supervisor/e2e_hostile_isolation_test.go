package supervisor_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// cacheTools is how many cache folders a task container gets.
const cacheTools = 7

// One task's agent plants a file in every dependency cache folder. Neither its
// own verify command (which must not trust what the agent wrote) nor a later
// task's agent or verify may see it; the task's own follow-up still does.
// Protection: cache volumes are per task, and verify has its own set.
func TestHostileCachesArePrivatePerTask(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, hostileCachesArePrivatePerTask)
}

func hostileCachesArePrivatePerTask(t *testing.T, rt hostileRuntime) {
	marker := "trakkar-cache-marker-" + testimage.RunID()
	verify := `for d in /trakkar/cache/*; do if [ -e "$d/` + marker + `" ]; then echo "VERIFY SAW $d"; else echo "verify clean $d"; fi; done`
	e := newVerifyEnv(t, verify)
	e.start(e.verifyConfig(rt.apply))

	hostileTask(t, e, "ISO-1", "Poison the caches", "fake:attack=cache-plant marker="+marker, "fake:write=iso-1.txt=one")
	planter := e.waitCompleted("ISO-1", 120*time.Second)
	hostileTask(t, e, "ISO-2", "Use the caches", "fake:attack=cache-look marker="+marker, "fake:write=iso-2.txt=two")
	victim := e.waitCompleted("ISO-2", 120*time.Second)

	t.Run("planted", func(t *testing.T) {
		lines := hostileLines(t, planter)
		for _, tool := range []string{"npm", "yarn", "pnpm", "pip", "go-mod", "go-build", "cargo"} {
			requireLines(t, lines, "HOSTILE PLANTED cache-plant:", "/trakkar/cache/"+tool+"/"+marker)
		}
		succeededWithPR(t, e, planter)
	})
	t.Run("own verify does not see the agent's cache", func(t *testing.T) {
		out := logText(planter.Events)
		if strings.Contains(out, "VERIFY SAW") || strings.Count(out, "verify clean") != cacheTools {
			t.Errorf("verify of the planting task:\n%s", out)
		}
	})
	t.Run("another task sees nothing", func(t *testing.T) {
		lines := hostileLines(t, victim)
		noneFound(t, lines)
		requireLines(t, lines, "HOSTILE SCANNED cache-look:", fmt.Sprintf("%d cache folders", cacheTools))
		out := logText(victim.Events)
		if strings.Contains(out, "VERIFY SAW") || strings.Count(out, "verify clean") != cacheTools {
			t.Errorf("verify of the other task:\n%s", out)
		}
		succeededWithPR(t, e, victim)
	})
	t.Run("the task's follow-up keeps its cache", func(t *testing.T) {
		if _, err := e.stand.PostMessage(planter.Run.TaskID, "Look again.\nfake:scenario=hostile\nfake:attack=cache-look marker="+marker); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 120*time.Second, "follow-up of ISO-1", func() bool {
			tv, _ := e.stand.TaskByKey("ISO-1")
			return len(tv.Runs) == 2 && tv.Runs[1].Completion != nil
		})
		tv, _ := e.stand.TaskByKey("ISO-1")
		lines := hostileLines(t, tv.Runs[1])
		requireLines(t, lines, "HOSTILE FOUND cache-look:", "/trakkar/cache/npm/"+marker, "/trakkar/cache/go-build/"+marker)
	})
}

// The agent leaves setuid/setgid, sticky and world-writable files (one behind a
// folder with no permissions), a FIFO and a symlink to a setuid host file in
// the worktree, its state, its git folder and the out folder, and makes the
// out folder read-only. Protection: after every container the runner clears
// those bits without following links, and resets the out folder before each
// container, so the follow-up runs normally.
func TestHostileSetuidFilesAreCleared(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, hostileSetuidFilesAreCleared)
}

func hostileSetuidFilesAreCleared(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{})
	canary := filepath.Join(t.TempDir(), "setuid-canary")
	if err := os.WriteFile(canary, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(canary, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if modeBits(t, canary)&0o4000 == 0 {
		t.Fatalf("this file system does not keep setuid bits: %o", modeBits(t, canary))
	}
	e.start(e.config(rt.apply))
	hostileTask(t, e, "MOD-1", "Leave setuid files", "fake:attack=setuid target="+canary)
	first := e.waitCompleted("MOD-1", 120*time.Second)
	key := hostgit.Slug("MOD-1", 60)
	dirs := []string{
		filepath.Join(e.repo, ".trakkar-worktrees", key),
		filepath.Join(e.repo, ".trakkar-worktrees", ".state", key),
	}

	t.Run("first run", func(t *testing.T) {
		lines := hostileLines(t, first)
		for _, d := range []string{"/workspace/.trakkar-modes", "/trakkar/state", "/trakkar/git", "/trakkar/out"} {
			requireLines(t, lines, "HOSTILE PLANTED setuid:", d+"/trakkar-suid mode 6755", d+"/trakkar-hidden mode 2000")
		}
		requireLines(t, lines, "HOSTILE PLANTED setuid:", "/trakkar/out mode 0555", "/trakkar/state/trakkar-link -> "+canary,
			"/trakkar/out/trakkar-fifo FIFO")
		noUnsafeModes(t, dirs...)
	})

	tv, _ := e.stand.TaskByKey("MOD-1")
	if _, err := e.stand.PostMessage(tv.Task.ID, "Once more."); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "follow-up of MOD-1", func() bool {
		tv, _ := e.stand.TaskByKey("MOD-1")
		return len(tv.Runs) == 2 && tv.Runs[1].Completion != nil
	})
	tv, _ = e.stand.TaskByKey("MOD-1")
	second := tv.Runs[1]

	t.Run("follow-up", func(t *testing.T) {
		lines := hostileLines(t, second)
		requireLines(t, lines, "HOSTILE PLANTED setuid:", "/trakkar/state/trakkar-suid mode 6755")
		requireLines(t, lines, "HOSTILE INFO setuid:", "this run leaves it writable")
		if second.Completion.Outcome != trakkar.OutcomeSucceeded {
			t.Errorf("follow-up after the out folder was locked: %q %q\n%s", second.Completion.Outcome,
				deref(second.Completion.Error), eventTexts(second.Events))
		}
		noUnsafeModes(t, dirs...)
	})
	t.Run("symlink not followed", func(t *testing.T) {
		if m := modeBits(t, canary); m != 0o4755 {
			t.Errorf("the host file behind the agent's symlink changed mode to %o", m)
		}
	})
}

// noUnsafeModes fails on any setuid/setgid or world-writable entry under roots
// (symlinks aside: their mode means nothing), and on folders it cannot read.
// A root that is gone (a published task's worktree) is skipped.
func noUnsafeModes(t *testing.T, roots ...string) {
	t.Helper()
	n := 0
	for _, root := range roots {
		if _, err := os.Lstat(root); os.IsNotExist(err) {
			t.Logf("%s is gone", root)
			continue
		}
		// The run may still be tidying up after its completion (the published
		// worktree goes after it, the event files with it): an entry that
		// vanishes during the walk has no mode left to check.
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				t.Errorf("walk %s: %v", p, err)
				return nil
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); errors.Is(err, fs.ErrNotExist) {
				return nil
			} else if err != nil {
				t.Errorf("lstat %s: %v", p, err)
				return nil
			}
			n++
			if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
				return nil
			}
			if st.Mode&0o6002 != 0 {
				t.Errorf("unsafe mode %o (owner %d) left on the host: %s", st.Mode&0o7777, st.Uid, p)
			}
			if st.Mode&syscall.S_IFMT == syscall.S_IFDIR && (st.Mode&0o500 != 0o500) {
				t.Errorf("folder %s left unreadable to its owner (mode %o)", p, st.Mode&0o7777)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("walk %s: %v", root, err)
		}
	}
	t.Logf("checked %d entries under %v", n, roots)
}

func modeBits(t *testing.T, path string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

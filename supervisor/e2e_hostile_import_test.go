package supervisor_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// Limits of the import/disk runner, small enough for the attacks to pass them.
const (
	importMaxBytes    = 256 << 10
	importWorkspaceMB = 16
	importFillMB      = 48
)

// refusedWithoutPR fails unless the run failed, opened no PR and left its
// branch where origin/main is.
func refusedWithoutPR(t *testing.T, e *env, rv standin.RunView, branchGlob string) string {
	t.Helper()
	if rv.Completion.Outcome != trakkar.OutcomeFailed || rv.Completion.PullRequest != nil {
		t.Fatalf("outcome %q pr %v error %q\n%s", rv.Completion.Outcome, rv.Completion.PullRequest,
			deref(rv.Completion.Error), eventTexts(rv.Events))
	}
	if out := gitCmd(t, e.repo, "branch", "--list", branchGlob, "--format=%(objectname)"); out != gitCmd(t, e.repo, "rev-parse", "origin/main") {
		t.Errorf("the refused change was committed: branch at %q", out)
	}
	return deref(rv.Completion.Error)
}

// The import and disk attacks of issue 9 (items 4 and 8), with the runner's
// default protected paths, a small file cap and a small workspace cap.
func TestHostileImportAndDisk(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, hostileImportAndDisk)
}

func hostileImportAndDisk(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{lease: 5})
	cfg := e.config(func(c *supervisor.Config) {
		c.MaxConcurrency = 4
		c.Policy = importpolicy.Options{MaxFileBytes: importMaxBytes}
		c.MaxWorkspaceMB = importWorkspaceMB
		rt.apply(c)
	})
	hostileTask(t, e, "HIM-1", "Symlinked .github", "fake:attack=symlink-parent")
	hostileTask(t, e, "HIM-2", "A file over the cap", fmt.Sprintf("fake:attack=big-file kb=%d", 8*importMaxBytes>>10))
	hostileTask(t, e, "HIM-3", "Fill the disk", fmt.Sprintf("fake:attack=disk-fill mb=%d secs=120", importFillMB))
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "HIM-4", Title: "Ordinary task beside them",
		Description: "Write a note.\nfake:write=note.txt=an accepted change\n"}); err != nil {
		t.Fatal(err)
	}
	storeBefore := testimage.ObjectStoreBytes(t, e.repo)
	e.start(cfg)
	runs := map[string]standin.RunView{}
	for _, k := range []string{"HIM-1", "HIM-2", "HIM-3", "HIM-4"} {
		runs[k] = e.waitCompleted(k, 150*time.Second)
	}

	// Protection: a symlink at a parent of a protected path is refused like the
	// path itself, and .github/** is protected by default.
	t.Run("symlinked parent of a protected path", func(t *testing.T) {
		rv := runs["HIM-1"]
		requireLines(t, hostileLines(t, rv), "HOSTILE PLANTED symlink-parent:", ".github -> hostile-ci")
		msg := refusedWithoutPR(t, e, rv, "trakkar/him-1-*")
		if !strings.Contains(msg, ".github (") || !strings.Contains(msg, "protected") {
			t.Errorf("refusal does not name the .github symlink:\n%s", msg)
		}
	})

	// Protection: StageAll writes objects into a quarantine that Unstage throws
	// away, so a refused file never enters the user's object store.
	t.Run("refused file leaves no object", func(t *testing.T) {
		rv := runs["HIM-2"]
		requireLines(t, hostileLines(t, rv), "HOSTILE PLANTED big-file:", "")
		msg := refusedWithoutPR(t, e, rv, "trakkar/him-2-*")
		if !strings.Contains(msg, fmt.Sprintf("hostile-big.bin (%d bytes, limit %d)", 8*importMaxBytes, importMaxBytes)) {
			t.Errorf("refusal does not name the big file:\n%s", msg)
		}
		// The workspace is kept: hash the file there without writing (-w) anything.
		big := filepath.Join(e.repo, supervisor.WorktreeFolder, hostgit.Slug("HIM-2", 60), "hostile-big.bin")
		f, err := os.Open(big)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command("git", "hash-object", "--stdin")
		cmd.Stdin = f
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(string(out))
		if err := exec.Command("git", "--git-dir="+filepath.Join(e.repo, ".git"), "cat-file", "-e", id).Run(); err == nil {
			t.Errorf("the refused blob %s is in the user's object store", id)
		}
		if grew := testimage.ObjectStoreBytes(t, e.repo) - storeBefore; grew >= 8*importMaxBytes {
			t.Errorf("the object store grew by %d bytes for a refused %d-byte file", grew, 8*importMaxBytes)
		}
	})

	// Protection: the workspace watchdog measures what the container can write on
	// the host and stops it past --max-workspace-mb; the run fails with the reason
	// and the workspace is kept.
	t.Run("disk fill is stopped", func(t *testing.T) {
		rv := runs["HIM-3"]
		lines := hostileLines(t, rv)
		requireLines(t, lines, "HOSTILE PLANTED disk-fill:", fmt.Sprintf("holds %d MiB", importFillMB))
		for _, l := range lines {
			if strings.Contains(l, "nothing stopped the fill") {
				t.Errorf("the container ran on: %s", l)
			}
		}
		msg := refusedWithoutPR(t, e, rv, "trakkar/him-3-*")
		if want := fmt.Sprintf("the workspace grew past --max-workspace-mb (%d MiB)", importWorkspaceMB); !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
		if !hasEvent(rv.Events, trakkar.EventError, "max-workspace-mb") {
			t.Errorf("the stop is not shown in the task:\n%s", eventTexts(rv.Events))
		}
		fill := filepath.Join(e.repo, supervisor.WorktreeFolder, hostgit.Slug("HIM-3", 60), "hostile-fill.bin")
		if _, err := os.Stat(fill); err != nil {
			t.Errorf("the workspace was not kept: %v", err)
		}
	})

	// The quarantine still lets an accepted change through to the PR.
	t.Run("accepted change is published", func(t *testing.T) {
		files := succeededWithPR(t, e, runs["HIM-4"])
		if files["note.txt"] != "an accepted change" {
			t.Errorf("the accepted change was not published: %v", keysOf(files))
		}
	})
}

package supervisor_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/fakeagent"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// An agent writing worker-style event lines into /proc/1/fd/1 and every other
// process's stdout/stderr it can open must not get a single forged event to
// Trakkar, under runc and under gVisor. Protection: the worker is the
// container's init (no engine init holds the container's stdout) and is
// non-dumpable, so under runc a same-uid agent cannot open its fds; the CLI
// only gets pipes. gVisor does not apply that check to /proc/<pid>/fd, so the
// worker also signs every line with a key only its memory holds (gVisor does
// guard /proc/<pid>/mem), and the supervisor ignores unsigned lines, saying so.
func TestHostileForgedEventsDoNotReachTrakkar(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, hostileForgedEvents)
}

func hostileForgedEvents(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{})
	hostileTask(t, e, "HOS-30", "Forge events", "fake:attack=forge-events")
	e.start(e.config(rt.apply))
	rv := e.waitCompleted("HOS-30", 2*time.Minute)
	lines := hostileLines(t, rv)
	requireLines(t, lines, "HOSTILE SCANNED forge-events:", "tried")
	requireLines(t, lines, "HOSTILE BLOCKED forge-events:", "/proc/1/mem")
	if rt.runtime == "" {
		requireLines(t, lines, "HOSTILE BLOCKED forge-events:", "/proc/1/fd/1", "/proc/1/environ")
		noneFound(t, lines)
	}
	wroteStdout := false
	for _, l := range lines {
		wroteStdout = wroteStdout || (strings.HasPrefix(l, "HOSTILE FOUND") && strings.Contains(l, "/fd/1"))
	}
	ignored := false
	for _, ev := range rv.Events {
		ignored = ignored || (ev.Type == trakkar.EventError && strings.Contains(ev.Text, "that the worker did not write"))
		if !strings.Contains(ev.Text, fakeagent.ForgedEventMarker) {
			continue
		}
		if ev.Type == trakkar.EventLog && ev.Data["stream"] == "stderr" {
			continue // the CLI's stderr is forwarded as such: the agent's own channel
		}
		t.Errorf("a forged event reached Trakkar: %s %q", ev.Type, ev.Text)
	}
	if wroteStdout && !ignored {
		t.Errorf("forged lines reached the worker's stdout, but no event says they were ignored")
	}
	t.Logf("%s: forged lines reached the container's stdout: %v; reported as ignored: %v", rt.name, wroteStdout, ignored)
	if rv.Completion.Outcome == trakkar.OutcomeFailed {
		t.Errorf("outcome %q error %q", rv.Completion.Outcome, deref(rv.Completion.Error))
	}
}

// A 50 MiB stderr flood must not rotate the agent's next tool call out of the
// container's log unseen: the call reaches Trakkar, or an error event says how
// many lines were lost. Protection: the worker caps what it forwards of the
// CLI's stderr, and numbers its event lines so the supervisor sees gaps.
func TestHostileStderrFloodKeepsToolCall(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, hostileStderrFlood)
}

func hostileStderrFlood(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{})
	hostileTask(t, e, "HOS-31", "Flood stderr", "fake:attack=stderr-flood mb=50")
	// A small log rotates every few hundred KiB, as a big one does under load.
	e.start(e.config(func(c *supervisor.Config) {
		c.LogMaxSize = "256k"
		rt.apply(c)
	}))
	rv := e.waitCompleted("HOS-31", 3*time.Minute)
	// The attack ran: its report arrived, or the worker said how much of the
	// flood it dropped (the report itself may be among the lines rotation
	// took, which a loss event must then say).
	planted := false
	for _, l := range hostileLines(t, rv) {
		planted = planted || (strings.HasPrefix(l, "HOSTILE PLANTED stderr-flood:") && strings.Contains(l, "wrote 50 MiB to stderr"))
	}
	toolSeen, lossReported, dropped := false, false, false
	for _, ev := range rv.Events {
		if strings.Contains(ev.Text, "bytes of the agent's stderr") {
			dropped = true
		}
		if ev.Type == trakkar.EventTool && strings.Contains(ev.Text, fakeagent.FloodToolMarker) {
			toolSeen = true
		}
		if ev.Type == trakkar.EventError && strings.Contains(ev.Text, "were lost (container log rotation)") {
			lossReported = true
		}
	}
	if !planted && !dropped && !lossReported {
		t.Errorf("no sign that the flood ran:\n%s", tailText(eventTexts(rv.Events), 3000))
	}
	if !toolSeen && !lossReported {
		t.Errorf("the tool call after the flood vanished without a loss report:\n%s", tailText(eventTexts(rv.Events), 3000))
	}
	t.Logf("tool call seen: %v, loss reported: %v, %d events", toolSeen, lossReported, len(rv.Events))
}

func tailText(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// A flood of numbered agent messages through a log that rotates every 16 KiB,
// with the supervisor aborted in the middle and a new one following the same
// container: every note arrives at most once and in order, and the notes that
// rotation took are counted in loss events rather than silently missing.
func TestRotationFloodAcrossRestartExactlyOnce(t *testing.T) {
	parallelLong(t)
	// 5,000 notes paced over as long as 20,000 used to take, into 16 KiB files:
	// the log still rotates past its reader while no supervisor follows it (the
	// lost-lines check below), for about a third of the CPU.
	const notes = 5000
	e := newEnv(t, envOpts{lease: 10})
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "ROT-1", Title: "Flood",
		Description: fmt.Sprintf("fake:scenario=chatty\nfake:count=%d\nfake:delay=1200us\n", notes)}); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(func(c *supervisor.Config) { c.LogMaxSize = "16k" })
	first := e.start(cfg)
	waitFor(t, 60*time.Second, "the flood streaming", func() bool {
		rv, ok := e.lastRun("ROT-1")
		return ok && strings.Contains(eventTexts(rv.Events), "Progress note")
	})
	first.stop() // abort: the container keeps running for the next supervisor
	if err := first.wait(t, 30*time.Second); err != nil {
		t.Logf("first supervisor: %v", err)
	}
	// The aborted supervisor's last event POST can still land after Run
	// returned (its client gave up, the server had the request); once in 8
	// runs that put its numbering beside the next supervisor's. That belongs
	// to the shipper's abort path, not to following the log: let it land.
	time.Sleep(2 * time.Second)
	e.start(cfg)
	rv := e.waitCompleted("ROT-1", 3*time.Minute)
	assertSeqContiguous(t, rv.Events)

	seen := map[int]int64{}
	last, lost := 0, 0
	for _, ev := range rv.Events {
		if ev.Type == trakkar.EventError && strings.Contains(ev.Text, "of the agent's output w") {
			n, _ := strconv.Atoi(strings.Fields(ev.Text)[0])
			lost += n
		}
		for _, line := range strings.Split(ev.Text, "\n") {
			var i, of int
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "Progress note %d of %d.", &i, &of); err != nil {
				continue
			}
			if prev, dup := seen[i]; dup {
				t.Fatalf("note %d delivered twice (seq %d and %d)", i, prev, ev.Seq)
			}
			if i < last {
				t.Errorf("note %d arrived after note %d (seq %d after seq %d)", i, last, ev.Seq, seen[last])
			}
			seen[i], last = ev.Seq, i
		}
	}
	missing := notes - len(seen)
	t.Logf("%d of %d notes delivered, %d missing, %d lines reported lost, outcome %s",
		len(seen), notes, missing, lost, rv.Completion.Outcome)
	if missing > lost {
		t.Errorf("%d notes missing but only %d lines reported lost", missing, lost)
	}
	// Seconds without a supervisor are far more than three 16 KiB files hold.
	if lost == 0 {
		t.Error("no line was reported lost: rotation never outran the log's reader, which is what this test is about")
	}
	if !strings.Contains(eventTexts(rv.Events), "Runner restarted") {
		t.Error("the second supervisor did not follow the container")
	}
}

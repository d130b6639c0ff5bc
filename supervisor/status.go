package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/trakkar/trakkar-agent/internal/termtext"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// lastEventFile holds a run's latest event beside its record, for
// `trakkar-agent status`; the record itself is the pipeline's alone to write.
const lastEventFile = "last-event.json"

// Worker output can come many times a second: it is written at most this
// often, status and error events at once. Each write is a file replaced, for
// every running task: with 20 chatty tasks, writes every 2 s were an eighth
// of the runner's CPU.
const lastEventEvery = 5 * time.Second

// maxLastEventText bounds what the file keeps of an event's text.
const maxLastEventText = 300

// LastEvent is a run's latest event as status shows it (masked already).
type LastEvent struct {
	At   time.Time `json:"at"`
	Type string    `json:"type"`
	Text string    `json:"text"`
}

// lastEvent keeps a run's latest event on disk, throttled: an event held
// back is written by a timer once the interval has passed.
type lastEvent struct {
	mu      sync.Mutex
	path    string // "" writes nothing (dry run)
	savedAt time.Time
	unsaved *LastEvent
	timer   *time.Timer // pending write of unsaved
	closed  bool
}

// note keeps ev as the run's latest event.
func (l *lastEvent) note(ev trakkar.Event) {
	if l == nil || l.path == "" {
		return
	}
	le := &LastEvent{At: ev.At, Type: ev.Type, Text: oneLine(termtext.Strip(ev.Text), maxLastEventText)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.unsaved = le
	wait := lastEventEvery - time.Since(l.savedAt)
	switch {
	case ev.Type == trakkar.EventStatus || ev.Type == trakkar.EventError || wait <= 0:
		l.saveLocked()
	case l.timer == nil:
		l.timer = time.AfterFunc(wait, l.write)
	}
}

func (l *lastEvent) write() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if !l.closed {
		l.saveLocked()
	}
}

// close writes the latest event if it is held back, and nothing after.
func (l *lastEvent) close() {
	if l == nil || l.path == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.saveLocked()
	l.closed = true
}

func (l *lastEvent) saveLocked() {
	if l.unsaved == nil {
		return
	}
	if b, err := json.Marshal(l.unsaved); err == nil && os.MkdirAll(filepath.Dir(l.path), 0o755) == nil {
		// Best effort: status shows an older event, or none, at worst. Not
		// synced: it is rewritten every few seconds for every run.
		_ = replaceFile(l.path, b, false)
	}
	l.unsaved, l.savedAt = nil, time.Now()
}

// RunInfo is one run of this repository as its files on disk describe it:
// what `trakkar-agent status` shows beside the engine's view of its container.
type RunInfo struct {
	RunnerID    string     `json:"runner_id"`
	RunID       string     `json:"run_id"`
	TaskID      string     `json:"task_id"`
	TaskKey     string     `json:"task_key"`
	Attempt     int        `json:"attempt"`
	Phase       string     `json:"phase"`               // preparing, running, finishing, completing, done
	Outcome     string     `json:"outcome,omitempty"`   // once decided
	Reason      string     `json:"reason,omitempty"`    // why it failed, as Trakkar was told
	ClaimedAt   time.Time  `json:"claimed_at,omitzero"` // zero in records older than this field
	UpdatedAt   time.Time  `json:"updated_at"`          // the record's last write
	ContainerID string     `json:"container_id,omitempty"`
	Workspace   string     `json:"workspace,omitempty"` // the task's worktree, once made
	Branch      string     `json:"branch,omitempty"`
	LastEvent   *LastEvent `json:"last_event,omitempty"`
	// Kept: the run is done and its workspace is still on disk.
	Kept bool `json:"kept,omitempty"`
}

// Elapsed is how long the run has been going, or went when it is done.
func (ri RunInfo) Elapsed(now time.Time) time.Duration {
	start := ri.ClaimedAt
	if start.IsZero() {
		return 0
	}
	if ri.Phase == phaseDone {
		now = ri.UpdatedAt
	}
	return max(now.Sub(start), 0)
}

// ReadRuns returns the runs of runner id (every runner's when id is "") that
// the repository's worktree folder holds and that are not over: working, or
// done with their workspace kept. It reads files only, so it works whether or
// not a supervisor runs.
func ReadRuns(repo, id string) ([]RunInfo, error) {
	states := filepath.Join(WorktreeRoot(repo), ".state")
	dirs, err := os.ReadDir(states)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state folder: %w", err)
	}
	var out []RunInfo
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(states, d.Name())
		b, err := os.ReadFile(filepath.Join(dir, recordFile))
		if err != nil {
			continue
		}
		var rec runRecord
		if json.Unmarshal(b, &rec) != nil || rec.Claim.Run.ID == "" || (id != "" && rec.RunnerID != id) {
			continue
		}
		ri := infoOf(rec)
		if rec.Phase == phaseDone {
			if ri.Workspace == "" {
				continue
			}
			if _, err := os.Stat(ri.Workspace); err != nil {
				continue
			}
			ri.Kept = true
		}
		if b, err := os.ReadFile(filepath.Join(dir, lastEventFile)); err == nil {
			var le LastEvent
			if json.Unmarshal(b, &le) == nil {
				ri.LastEvent = &le
			}
		}
		out = append(out, ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskKey < out[j].TaskKey })
	return out, nil
}

func infoOf(rec runRecord) RunInfo {
	ri := RunInfo{
		RunnerID: rec.RunnerID, RunID: rec.Claim.Run.ID, TaskID: rec.Claim.Task.ID, TaskKey: rec.Claim.Task.Key,
		Attempt: max(rec.Claim.Run.Attempt, 1), Phase: rec.Phase, ClaimedAt: rec.ClaimedAt, UpdatedAt: rec.UpdatedAt,
		ContainerID: rec.ContainerID, Workspace: rec.Worktree.Path, Branch: rec.Worktree.Branch,
	}
	if c := rec.Completion; c != nil {
		ri.Outcome = c.Outcome
		if c.Error != nil {
			ri.Reason = *c.Error
		}
	}
	return ri
}

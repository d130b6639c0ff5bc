package supervisor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// Phases of a run as written to its record. A restarted supervisor continues a
// run from its phase: it never starts the agent twice or opens a second PR.
const (
	phasePreparing  = "preparing"  // claimed; workspace being made
	phaseRunning    = "running"    // container created (ContainerID set)
	phaseFinishing  = "finishing"  // container exited; result on disk; publishing
	phaseCompleting = "completing" // completion decided, not yet acknowledged
	phaseDone       = "done"
)

// runRecord is what the supervisor needs beyond container labels to pick a run
// up again after a crash. It lives next to the task's worktree and is replaced
// atomically.
type runRecord struct {
	RunnerID    string              `json:"runner_id"`
	Claim       trakkar.Claim       `json:"claim"`
	ClaimedAt   time.Time           `json:"claimed_at,omitzero"` // when this runner claimed the run
	Phase       string              `json:"phase"`
	ContainerID string              `json:"container_id,omitempty"`
	Worktree    hostgit.Worktree    `json:"worktree"`
	Base        string              `json:"base,omitempty"`
	Completion  *trakkar.Completion `json:"completion,omitempty"`
	// Discard: the worktree goes once the completion is sent (publish
	// decided so); a restart at phaseCompleting still removes it.
	Discard bool `json:"discard_worktree,omitempty"`
	// VerifyRounds are the verify rounds run so far; a restart continues
	// counting from them, so the fix-round budget is not granted afresh.
	VerifyRounds []verifyRound `json:"verify_rounds,omitempty"`
	// EventKey (hex) checks the signatures of the running container's worker
	// lines; the record is never mounted into a container.
	EventKey  string    `json:"event_key,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

const recordFile = "run.json"

func (s *Supervisor) stateDirFor(t trakkar.Task) string {
	return filepath.Join(s.cfg.WorktreeRoot, ".state", s.taskFolder(t))
}

// loadRecords returns the unfinished runs recorded by this runner.
func (s *Supervisor) loadRecords() []runRecord {
	paths, _ := filepath.Glob(filepath.Join(s.cfg.WorktreeRoot, ".state", "*", recordFile))
	var out []runRecord
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var rec runRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			s.log.Warn("unreadable run record; ignoring it", zap.String("path", p), zap.Error(err))
			continue
		}
		if rec.Phase == phaseDone || rec.RunnerID != s.cfg.Runner.ID || rec.Claim.Run.ID == "" {
			continue
		}
		out = append(out, rec)
	}
	return out
}

// logPos is where in the container's log an event ends: the engine's
// timestamp of its last line and the worker's number of that line (0: none).
type logPos struct {
	At time.Time
	N  int64
}

// join is the position of an event made of the lines of p and q.
func (p logPos) join(q logPos) logPos {
	if q.At.After(p.At) {
		p.At = q.At
	}
	p.N = max(p.N, q.N)
	return p
}

// seqMap remembers, per shipped event, where in the container's log it ended,
// so a restarted supervisor can replay exactly the lines Trakkar has not
// acknowledged.
type seqMap struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func (s *Supervisor) seqMapPath(r *run) string { return s.seqMapPathFor(r.claim) }

func (s *Supervisor) seqMapPathFor(c trakkar.Claim) string {
	return filepath.Join(s.stateDirFor(c.Task), "events-"+hostgit.Slug(c.Run.ID, 60)+".pos")
}

// maxSeqIn is the highest seq in a position map; 0 when there is none.
func maxSeqIn(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var most int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		a, _, _ := strings.Cut(sc.Text(), " ")
		if seq, err := strconv.ParseInt(a, 10, 64); err == nil {
			most = max(most, seq)
		}
	}
	return most
}

func openSeqMap(path string) *seqMap {
	return &seqMap{path: path}
}

func (m *seqMap) record(seq int64, pos logPos) {
	if m == nil || seq <= 0 || pos.At.IsZero() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		f, err := os.OpenFile(m.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return
		}
		m.f = f
	}
	fmt.Fprintf(m.f, "%d %d %d\n", seq, pos.At.UnixNano(), pos.N)
}

func (m *seqMap) close() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f != nil {
		m.f.Close()
		m.f = nil
	}
}

// positionFor returns the log position reached by the events up to acked: the
// latest end among them, and the highest worker line number (0 when the
// record predates numbering). Zero means "from the start".
func positionFor(path string, acked int64) logPos {
	f, err := os.Open(path)
	if err != nil {
		return logPos{}
	}
	defer f.Close()
	var best, n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		seq, err1 := strconv.ParseInt(fields[0], 10, 64)
		ns, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil || seq > acked {
			continue
		}
		best = max(best, ns)
		if len(fields) > 2 {
			if v, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
				n = max(n, v)
			}
		}
	}
	if best == 0 {
		return logPos{}
	}
	return logPos{At: time.Unix(0, best), N: n}
}

package supervisor

import (
	"context"
	"io"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// API is the part of the Trakkar agent API the supervisor uses.
type API interface {
	Me(ctx context.Context) (trakkar.Agent, error)
	Queued(ctx context.Context, wait time.Duration, limit int) ([]trakkar.Run, error)
	Claim(ctx context.Context, runID string, r trakkar.Runner) (trakkar.Claim, error)
	Heartbeat(ctx context.Context, runID, state string) (trakkar.HeartbeatReply, error)
	PostEvents(ctx context.Context, runID string, evs []trakkar.Event) (int64, error)
	Complete(ctx context.Context, runID string, c trakkar.Completion) (trakkar.Run, error)
}

// Runtime starts and supervises task containers. internal/docker.Client is the
// production implementation; internal/fakeruntime is an in-memory one for
// tests. docs/runtime.md states the same contract in prose.
//
// Call order for one container: Create → Start → (Logs | LogsSince)* →
// Stop? → Remove. Start hands back the container's wait channel, and a
// supervisor that restarted uses Wait in its place for a container a previous
// process started; List finds those containers by label.
//
// Idempotence: Stop of a stopped or gone container, Remove of a gone one (or
// one being removed), RemoveNetwork of a gone network and RemoveVolume of a
// gone volume all return nil, so cleanup can always be run again after a
// crash.
//
// Contexts: every method returns early with an error wrapping ctx's error when
// ctx ends, and then may or may not have acted (a Create cut short can still
// leave its container behind; find it with List). Callers therefore clean up
// on a fresh context with its own timeout (context.WithoutCancel plus a
// deadline), never on the context that was just cancelled.
//
// Log writers: the Runtime writes to the io.Writers it is given and never
// closes them, nor keeps them after the call returns; the caller owns them and
// flushes or closes them once Logs or LogsSince has returned.
type Runtime interface {
	// Create validates the spec, makes its missing named volumes and creates the
	// container without starting it, returning its id. A name already taken is
	// an error.
	Create(ctx context.Context, s docker.Spec) (string, error)
	// Start starts a created container and returns a channel that yields its
	// end exactly once and is then closed. The wait is registered before the
	// start, so a container that exits at once is not missed. The wait lasts as
	// long as ctx: when ctx ends first, the channel yields a result whose Err
	// wraps ctx's error (the container itself keeps running).
	Start(ctx context.Context, id string) (<-chan docker.WaitResult, error)
	// Logs copies the container's stdout and stderr, demultiplexed, to the
	// writers (nil discards). Without follow it returns at the end of what is
	// logged so far; with follow it returns nil when the container's output
	// ends (it exited and everything it logged was written), or an error
	// wrapping ctx's error when ctx ends first. A stop therefore ends a follow
	// only once the container has exited.
	Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error
	// LogsSince is Logs from a point in time (zero: from the start), each line
	// prefixed by its RFC 3339 timestamp and a space, each line delivered once
	// and whole. A restarted supervisor passes the timestamp after the last
	// line Trakkar acknowledged to continue exactly there.
	LogsSince(ctx context.Context, id string, since time.Time, follow bool, stdout, stderr io.Writer) error
	// Wait blocks until an existing container is not running (at once for an
	// exited one) and returns how it ended; ctx's end ends the wait with an error.
	Wait(ctx context.Context, id string) (docker.ExitStatus, error)
	// List returns containers in every state (created, running, exited…) that
	// carry all the given labels; a label with an empty value matches on the
	// key alone.
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	// Stop sends the stop signal and kills the container after grace. A
	// stopped or gone container is not an error. Stop returns once the
	// container is no longer running, so ctx must outlive grace.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove force-removes the container (killing it if it still runs) with
	// its anonymous volumes; named volumes stay. A container that is gone or
	// already being removed is not an error.
	Remove(ctx context.Context, id string) error
	NetworkRuntime
	VolumeRuntime
}

// NetworkRuntime manages the networks the runner makes for a task's egress.
type NetworkRuntime interface {
	// CreateNetwork creates a bridge network; an internal one has no route off
	// the host.
	CreateNetwork(ctx context.Context, name string, internal bool, labels map[string]string) (string, error)
	// RemoveNetwork removes a network; one that is already gone is not an error.
	RemoveNetwork(ctx context.Context, id string) error
	// Connect attaches a container to a network under extra names.
	Connect(ctx context.Context, networkID, containerID string, aliases []string) error
	// ListNetworks returns the networks carrying all the given labels (an
	// empty value matches on the key alone).
	ListNetworks(ctx context.Context, labels map[string]string) ([]docker.Network, error)
}

// VolumeRuntime removes the named volumes a task's specs made (Create makes
// them).
type VolumeRuntime interface {
	// RemoveVolume drops a named volume; gone is not an error, one still used
	// by a container is.
	RemoveVolume(ctx context.Context, name string) error
}

// Git is the hardened host git.
type Git interface {
	Fetch(ctx context.Context, repo, remote string, auth hostgit.Auth) error
	DefaultBranch(ctx context.Context, repo, remote string) (string, error)
	RemoteBranchExists(ctx context.Context, repo, remote, branch string) (bool, error)
	AddWorktree(ctx context.Context, repo, path, branch, startPoint string) (hostgit.Worktree, error)
	AddWorktreeOwned(ctx context.Context, repo, path, branch, startPoint string, owner hostgit.Owner) (hostgit.Worktree, bool, error)
	BranchTip(ctx context.Context, repo, branch string) (string, error)
	IsAncestor(ctx context.Context, repo, ancestor, rev string) (bool, error)
	CountCommits(ctx context.Context, repo, from, rev string) (int, error)
	OpenWorktree(ctx context.Context, repo, path string) (hostgit.Worktree, error)
	StageAll(ctx context.Context, wt hostgit.Worktree) ([]hostgit.Change, error)
	ChangesSince(ctx context.Context, wt hostgit.Worktree, base string) ([]hostgit.Change, error)
	Unstage(ctx context.Context, wt hostgit.Worktree) error
	CommitStaged(ctx context.Context, wt hostgit.Worktree, message string) (string, error)
	Push(ctx context.Context, repo, remote, branch string, auth hostgit.Auth) error
	RemoveWorktree(ctx context.Context, repo string, wt hostgit.Worktree) error
	TrashWorktree(ctx context.Context, repo string, wt hostgit.Worktree, trashDir string) (string, error)
	PruneWorktrees(ctx context.Context, repo string) error
	Exclude(ctx context.Context, repo, pattern string) error
	InitScratch(ctx context.Context, gitDir, workTree, branch string) error
	ScratchFromCheckout(ctx context.Context, gitDir string, wt hostgit.Worktree) error
}

// Forge opens pull requests.
type Forge interface {
	FindOpenPR(ctx context.Context, r forge.Repo, head string) (*forge.PR, error)
	CreatePR(ctx context.Context, r forge.Repo, p forge.NewPR) (*forge.PR, error)
}

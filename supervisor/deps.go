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

// Runtime starts and supervises task containers.
type Runtime interface {
	Create(ctx context.Context, s docker.Spec) (string, error)
	Start(ctx context.Context, id string) (<-chan docker.WaitResult, error)
	LogsSince(ctx context.Context, id string, since time.Time, follow bool, stdout, stderr io.Writer) error
	Wait(ctx context.Context, id string) (docker.ExitStatus, error)
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Stop(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
	Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error
	CreateNetwork(ctx context.Context, name string, internal bool, labels map[string]string) (string, error)
	RemoveNetwork(ctx context.Context, id string) error
	Connect(ctx context.Context, networkID, containerID string, aliases []string) error
	ListNetworks(ctx context.Context, labels map[string]string) ([]docker.Network, error)
	// RemoveVolume drops a named volume a task's specs created; gone is not an error.
	RemoveVolume(ctx context.Context, name string) error
}

// Git is the hardened host git.
type Git interface {
	Fetch(ctx context.Context, repo, remote string, auth hostgit.Auth) error
	DefaultBranch(ctx context.Context, repo, remote string) (string, error)
	RemoteBranchExists(ctx context.Context, repo, remote, branch string) (bool, error)
	AddWorktree(ctx context.Context, repo, path, branch, startPoint string) (hostgit.Worktree, error)
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
	Exclude(ctx context.Context, repo, pattern string) error
	InitScratch(ctx context.Context, gitDir, workTree, branch string) error
}

// Forge opens pull requests.
type Forge interface {
	FindOpenPR(ctx context.Context, r forge.Repo, head string) (*forge.PR, error)
	CreatePR(ctx context.Context, r forge.Repo, p forge.NewPR) (*forge.PR, error)
}

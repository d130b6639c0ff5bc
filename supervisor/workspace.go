package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/sandbox"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// workspace is everything on the host that belongs to one task.
type workspace struct {
	key      string // folder-safe task key
	wt       hostgit.Worktree
	stateDir string // per-task state, kept across runs (agent session)
	inDir    string // job file, mounted read-only
	outDir   string // worker result; emptied before every agent run
	agentDir string // the agent CLI's config dir (sessions), mounted read-write
	gitDir   string // the agent's disposable repository, rebuilt for every run
	scratch  bool   // gitDir is ready to mount
	// fresh: the worktree was checked out by this run and nothing has
	// written to it since, so its index and files are exactly its HEAD.
	fresh bool
	// owned: the worktree's files were made by the container's user, so
	// they are handed over and taken back without a chown of the tree.
	owned   bool
	base    string // base branch name
	earlier int    // commits the task branch already had over the base
}

// origin says where the workspace starts, for the "Workspace ready" status.
func (ws *workspace) origin() string {
	switch ws.earlier {
	case 0:
		return "from " + ws.base
	case 1:
		return "continuing 1 earlier commit"
	}
	return fmt.Sprintf("continuing %d earlier commits", ws.earlier)
}

// workspacePaths lays out the host folders of a task's workspace; the
// worktree, base and counts are filled in by whoever prepares or recovers it.
func (s *Supervisor) workspacePaths(t trakkar.Task) *workspace {
	ws := &workspace{key: s.taskFolder(t), stateDir: s.stateDirFor(t)}
	ws.inDir = filepath.Join(ws.stateDir, "in")
	ws.outDir = filepath.Join(ws.stateDir, "out")
	ws.agentDir = filepath.Join(ws.stateDir, "agent")
	ws.gitDir = filepath.Join(ws.stateDir, "agent-git")
	return ws
}

func (s *Supervisor) taskFolder(t trakkar.Task) string {
	key := hostgit.Slug(t.Key, 60)
	if key == "task" && t.Key == "" {
		key = hostgit.Slug(t.ID, 60)
	}
	return key
}

// branchFile, in the task's supervisor-owned state folder, names the branch
// its earlier runs worked on.
const branchFile = "branch"

// branchFor is the branch a task's work goes to: its PR's branch for a task
// that already has one, else the branch its earlier runs used (the title may
// have changed since), else a fresh name from the key and title.
func (s *Supervisor) branchFor(t trakkar.Task) (string, error) {
	if t.PullRequest != nil && t.PullRequest.Branch != "" {
		if err := hostgit.ValidateBranch(t.PullRequest.Branch); err != nil {
			return "", fmt.Errorf("task's pull request branch: %w", err)
		}
		return t.PullRequest.Branch, nil
	}
	if b, err := os.ReadFile(filepath.Join(s.stateDirFor(t), branchFile)); err == nil {
		if name := strings.TrimSpace(string(b)); hostgit.ValidateBranch(name) == nil {
			return name, nil
		}
	}
	prefix := s.agent.BranchPrefix
	if prefix == "" {
		prefix = "trakkar/"
	}
	return hostgit.BranchName(prefix, t.Key, t.Title)
}

func (s *Supervisor) auth() hostgit.Auth { return hostgit.Auth{Token: s.cfg.GitToken} }

// prepareWorkspace fetches the remote and creates (or reuses) the task's worktree
// and state folders.
func (s *Supervisor) prepareWorkspace(ctx context.Context, r *run) (*workspace, error) {
	t := r.claim.Task
	ws := s.workspacePaths(t)
	branch, err := s.branchFor(t)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.cfg.WorktreeRoot, ws.key)
	if s.cfg.MinFreeBytes > 0 {
		free, err := freeBytes(s.cfg.WorktreeRoot)
		if err != nil {
			return nil, err
		}
		if free < uint64(s.cfg.MinFreeBytes) {
			return nil, fmt.Errorf("not enough disk space for a workspace: %d MiB free under %s, need %d MiB (run trakkar-agent prune, or lower --min-free-mb)",
				free>>20, s.cfg.WorktreeRoot, s.cfg.MinFreeBytes>>20)
		}
	}

	if err := s.git.Exclude(ctx, s.cfg.Repo, WorktreeExclude); err != nil {
		return nil, fmt.Errorf("exclude worktree folder: %w", err)
	}
	if err := s.fetches.do(ctx, fetchTimeout); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", s.cfg.Remote, err)
	}
	// From here on only git's own locks: another task's worktree add, as long
	// as a large checkout takes, does not hold this one up.
	if t.BaseBranch != nil && *t.BaseBranch != "" {
		if err := hostgit.ValidateBranch(*t.BaseBranch); err != nil {
			return nil, fmt.Errorf("task base branch: %w", err)
		}
		ws.base = *t.BaseBranch
	} else if ws.base, err = s.git.DefaultBranch(ctx, s.cfg.Repo, s.cfg.Remote); err != nil {
		return nil, fmt.Errorf("find default branch: %w", err)
	}

	baseRef := s.cfg.Remote + "/" + ws.base
	if _, err := os.Lstat(path); err == nil {
		// A retained workspace (follow-up, or a re-queued attempt) continues.
		ws.wt, err = s.git.OpenWorktree(ctx, s.cfg.Repo, path)
		if err != nil {
			return nil, fmt.Errorf("folder %s exists but is not a worktree of this repository: %w", path, err)
		}
		if ws.wt.Branch != "" {
			ws.earlier, _ = s.git.CountCommits(ctx, s.cfg.Repo, baseRef, "refs/heads/"+ws.wt.Branch)
		}
	} else {
		start, err := s.startPoint(ctx, branch, baseRef)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(s.cfg.WorktreeRoot, 0o755); err != nil {
			return nil, fmt.Errorf("create worktree folder: %w", err)
		}
		if owner, ok := s.handOverTo(); ok {
			ws.wt, ws.owned, err = s.git.AddWorktreeOwned(ctx, s.cfg.Repo, path, branch, start, owner)
		} else {
			ws.wt, err = s.git.AddWorktree(ctx, s.cfg.Repo, path, branch, start)
		}
		if err != nil {
			return nil, fmt.Errorf("create worktree: %w", err)
		}
		ws.fresh = true
		if ws.earlier, err = s.git.CountCommits(ctx, s.cfg.Repo, baseRef, ws.wt.Base); err != nil {
			return nil, fmt.Errorf("count the branch's commits: %w", err)
		}
	}
	for _, d := range []string{ws.inDir, ws.outDir, ws.agentDir, filepath.Join(ws.agentDir, "cursor")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create state folder: %w", err)
		}
	}
	if err := writeFileAtomic(filepath.Join(ws.stateDir, branchFile), []byte(ws.wt.Branch+"\n")); err != nil {
		return nil, fmt.Errorf("remember the task's branch: %w", err)
	}
	// A stale result from an earlier run must never be mistaken for this one's.
	if err := os.Remove(filepath.Join(ws.outDir, workerproto.ResultFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("clear old result: %w", err)
	}
	return ws, nil
}

// fetchTimeout bounds one shared fetch of the remote, which no single claim
// can cancel.
const fetchTimeout = 10 * time.Minute

// startPoint is where a new worktree of the task's branch begins: everything
// the task already has, never less. That is the pushed branch or the base, moved
// on to the local branch when it holds commits they lack (a --publish local
// task, or a push that failed). A local branch and a pushed one that each hold
// commits the other lacks is refused rather than choosing which work to drop.
func (s *Supervisor) startPoint(ctx context.Context, branch, baseRef string) (string, error) {
	start := baseRef
	pushed, err := s.git.RemoteBranchExists(ctx, s.cfg.Repo, s.cfg.Remote, branch)
	if err != nil {
		return "", fmt.Errorf("look up branch %s: %w", branch, err)
	}
	if pushed {
		start = s.cfg.Remote + "/" + branch
	}
	local, err := s.git.BranchTip(ctx, s.cfg.Repo, branch)
	if err != nil {
		return "", fmt.Errorf("look up local branch %s: %w", branch, err)
	}
	if local == "" {
		return start, nil
	}
	if behind, err := s.git.IsAncestor(ctx, s.cfg.Repo, local, start); err != nil {
		return "", fmt.Errorf("compare branch %s with %s: %w", branch, start, err)
	} else if behind {
		return start, nil
	}
	ahead, err := s.git.IsAncestor(ctx, s.cfg.Repo, start, local)
	if err != nil {
		return "", fmt.Errorf("compare branch %s with %s: %w", branch, start, err)
	}
	// Against the base, a task branch that only lacks the base's newer commits
	// still carries the task's work: continue it.
	if ahead || !pushed {
		return local, nil
	}
	return "", fmt.Errorf("local branch %s and %s have diverged (each holds commits the other lacks); "+
		"reconcile them by hand, then send the message again", branch, start)
}

// handOver gives the container user the task's folders when it differs from the
// supervisor's own uid (only possible as root). It never follows symlinks. It
// runs before every container of the task, so it is also where the mount
// sources the agent could have replaced are made real folders again.
func (s *Supervisor) handOver(ws *workspace) error {
	// agent/cursor lies inside the agent-writable /trakkar/state and is mounted
	// again as ~/.cursor: a symlink there would mount whatever it points at.
	if err := realDir(filepath.Join(ws.agentDir, "cursor")); err != nil {
		return fmt.Errorf("prepare agent state folder: %w", err)
	}
	uid, gid, err := sandbox.ParseUser(s.cfg.ContainerUser)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 || uid == os.Geteuid() {
		return nil
	}
	dirs := []string{ws.inDir, ws.outDir, ws.agentDir}
	if !ws.owned {
		dirs = append(dirs, ws.wt.Path)
	}
	if ws.scratch {
		// Only when made: --no-agent-git, or a failed InitScratch, leaves none.
		dirs = append(dirs, ws.gitDir)
	}
	for _, d := range dirs {
		if err := chownTree(d, uid, gid); err != nil {
			return fmt.Errorf("hand workspace to container user: %w", err)
		}
	}
	return nil
}

// takeBack returns the worktree to the repository's owner before host git
// reads it, and puts back the .git pointer the agent may have replaced, so a
// kept workspace is safe to open. A worktree checked out as the container's
// user stays that user's: host git (root here) reads it all the same, with
// its own gitdir, after the container is gone; and its files were never the
// repository owner's, so nothing of the owner's is left to the agent.
func (s *Supervisor) takeBack(ws *workspace) error {
	if err := hostgit.RestorePointer(ws.wt); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(s.cfg.Repo)
	if err != nil {
		return fmt.Errorf("stat repository: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	dirs := []string{ws.outDir}
	if !ws.owned {
		dirs = append(dirs, ws.wt.Path)
	}
	for _, d := range dirs {
		if err := chownTree(d, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("take workspace back: %w", err)
		}
	}
	return nil
}

// handOverTo is the container's user when the task's files must be made
// for it (this process is root and the container's user is not).
func (s *Supervisor) handOverTo() (hostgit.Owner, bool) {
	uid, gid, err := sandbox.ParseUser(s.cfg.ContainerUser)
	if err != nil || os.Geteuid() != 0 || uid == os.Geteuid() {
		return hostgit.Owner{}, false
	}
	return hostgit.Owner{UID: uid, GID: gid}, true
}

// realDir makes path a folder that is not a symlink: anything else there is
// removed (a symlink itself, never its target) and the folder created.
func realDir(path string) error {
	if fi, err := os.Lstat(path); err == nil && !fi.IsDir() {
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	return os.MkdirAll(path, 0o755)
}

func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// trashFolder, under the worktree root, holds worktrees being deleted.
const trashFolder = ".trash"

func trashDir(root string) string { return filepath.Join(root, trashFolder) }

// discardWorkspace removes a published run's worktree. Only the rename into
// the trash and git's bookkeeping hold the repository lock; the deletion, as
// long as git's checkout took, runs in the background. A crash anywhere here
// leaves a trash folder and a stale worktree record, which the next start and
// prune finish (cleanTrash).
func (s *Supervisor) discardWorkspace(ctx context.Context, r *run) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	wt := r.rec.Worktree
	s.repoMu.Lock()
	trashed, err := s.git.TrashWorktree(cctx, s.cfg.Repo, wt, trashDir(s.cfg.WorktreeRoot))
	if err != nil && trashed == "" {
		// A rename across file systems, say: delete in place, as before.
		r.log.Warn("move worktree to the trash; removing it in place", zap.Error(err))
		if err := s.git.RemoveWorktree(cctx, s.cfg.Repo, wt); err != nil {
			r.log.Warn("remove worktree", zap.Error(err))
		}
	} else if err != nil {
		r.log.Warn("trash worktree", zap.Error(err))
	}
	s.repoMu.Unlock()
	if trashed == "" {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hostgit.DeleteTrashed(trashed); err != nil {
			r.log.Warn("delete trashed worktree", zap.Error(err))
		}
	}()
}

// TrashGit is what finishing interrupted worktree removals needs.
type TrashGit interface {
	PruneWorktrees(ctx context.Context, repo string) error
}

// cleanTrash finishes worktree removals a crash cut short: git's records of
// worktrees whose folders went to the trash are pruned, and the trash
// emptied. A nil g leaves git's records alone.
func cleanTrash(ctx context.Context, repo string, g TrashGit) error {
	if g != nil {
		if err := g.PruneWorktrees(ctx, repo); err != nil {
			return err
		}
	}
	root := WorktreeRoot(repo)
	if err := hostgit.TrashLeftoverCheckouts(root, trashDir(root)); err != nil {
		return err
	}
	return hostgit.EmptyTrash(trashDir(root))
}

package sandbox

// Shared dependency folders (--share, default node_modules).
//
// A task's worktree is a fresh checkout, so it has none of the main checkout's
// installed dependencies, and a host symlink would not resolve inside the
// container. Each shared folder is therefore mounted into the task's
// containers at /workspace/<path> as an overlay filesystem: the main
// checkout's folder is the read-only lower layer and the task's state folder
// holds the upper (writable) layer. Nothing is copied per task (opening a task
// costs one volume create, not a copy of a 500 MB node_modules), a task's
// writes land in its own upper layer so concurrent tasks never see each
// other's changes, and the main checkout is never written. The engine performs
// the mount itself through a `local` volume of type overlay, so the task
// containers need no capability for it. Verified on Docker 20.10 with the
// fuse-overlayfs storage driver on kernel 6.18 (the volume uses the kernel's
// overlay, not the storage driver), see TestSharedFolderIsPrivatePerTask.
// The per-task copy (`cp -a --reflink=auto`) was the alternative: on ext4,
// which has no reflinks, it is a full copy per task.
//
// Caveat: overlay does not promise a consistent view when the lower folder
// changes while mounted (someone running npm install in the main checkout
// during a task); a task sees the old or the new file, never a mix the kernel
// could corrupt.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// DefaultShare is shared when Config.Share is nil and the main checkout has it.
const DefaultShare = "node_modules"

// share is one shared folder of one task.
type share struct {
	path   string // relative to the repository, slash-separated
	lower  string // the main checkout's folder, symlinks resolved
	upper  string // the task's writable layer
	work   string // overlay's scratch folder, next to upper
	volume string
}

// CheckSharePath refuses share paths that are not plain folders inside the
// repository, or that name its .git or worktrees, the runner's own folder.
func CheckSharePath(p, worktrees string) error {
	clean := filepath.Clean(p)
	switch {
	case strings.TrimSpace(p) == "" || clean == ".":
		return fmt.Errorf("share path %q: name a folder inside the repository", p)
	case filepath.IsAbs(p) || !filepath.IsLocal(clean):
		return fmt.Errorf("share path %q must be relative and stay inside the repository", p)
	case strings.ContainsAny(p, ",:\\\n"):
		return fmt.Errorf("share path %q contains ',', ':' or '\\', which overlay mounts cannot express", p)
	}
	for _, part := range strings.Split(filepath.ToSlash(clean), "/") {
		if strings.EqualFold(part, ".git") || part == worktrees {
			return fmt.Errorf("share path %q may not name %s", p, part)
		}
	}
	return nil
}

// shares returns the task's shared folders that exist in the main checkout.
func (b *Sandbox) shares(r Run) []share {
	paths, explicit := b.cfg.Share, true
	if paths == nil {
		paths, explicit = []string{DefaultShare}, false
	}
	var out []share
	for _, p := range paths {
		if CheckSharePath(p, b.cfg.WorktreeFolder) != nil {
			continue // refused by the configuration's validation already
		}
		rel := filepath.Clean(p)
		lower, err := filepath.EvalSymlinks(filepath.Join(b.cfg.Repo, rel))
		if err == nil {
			var fi os.FileInfo
			if fi, err = os.Stat(lower); err == nil && !fi.IsDir() {
				err = errors.New("not a folder")
			}
		}
		if err == nil && exposesRepo(lower, b.cfg.Repo) {
			// A symlinked share must not hand the container the repository
			// itself, and with it the user's .git.
			b.log.Warn("shared folder resolves to the repository, a folder above it, or its .git; not shared",
				zap.String("path", p), zap.String("resolves_to", lower))
			continue
		}
		if err != nil {
			if explicit {
				b.log.Debug("shared folder not available; not shared", zap.String("path", p), zap.Error(err))
			}
			continue
		}
		sum := sha256.Sum256([]byte(filepath.ToSlash(rel) + "\x00" + lower))
		h := hex.EncodeToString(sum[:5])
		dir := filepath.Join(r.StateDir, "share", h)
		out = append(out, share{
			path:   filepath.ToSlash(rel),
			lower:  lower,
			upper:  filepath.Join(dir, "upper"),
			work:   filepath.Join(dir, "work"),
			volume: "trakkar-share-" + repoKey(b.cfg.Repo) + "-" + r.Folder + "-" + h,
		})
	}
	return out
}

// PrepareShares creates the writable layers of the task's shared folders and
// makes them the container user's. It runs before every container of the task.
func (b *Sandbox) PrepareShares(r Run) error {
	uid, gid, err := ParseUser(b.cfg.User)
	if err != nil {
		return err
	}
	for _, sh := range b.shares(r) {
		for _, d := range []string{sh.upper, sh.work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("prepare shared folder %s: %w", sh.path, err)
			}
		}
		if os.Geteuid() != 0 || uid == os.Geteuid() {
			continue
		}
		// The merged folder's root takes the upper layer's owner.
		if err := os.Lchown(sh.upper, uid, gid); err != nil {
			return fmt.Errorf("prepare shared folder %s: %w", sh.path, err)
		}
		if owner(sh.lower) != uid {
			if err := skeleton(sh.lower, sh.upper, uid, gid); err != nil {
				return fmt.Errorf("prepare shared folder %s: %w", sh.path, err)
			}
		}
	}
	return nil
}

// skeleton mirrors lower's folders into upper, owned by uid:gid. A folder that
// exists in both layers takes its owner from upper, so the container user may
// create, replace and delete entries anywhere in the merged tree even though
// lower belongs to someone else; files from lower stay read-only to it until
// replaced. Only needed when a root supervisor runs tasks as another uid, the
// same situation handOver covers for the worktree.
func skeleton(lower, upper string, uid, gid int) error {
	return filepath.WalkDir(lower, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable subtree is left as it is
		}
		if p == lower || !d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(lower, p)
		if err != nil {
			return nil
		}
		dst := filepath.Join(upper, rel)
		if fi, err := os.Lstat(dst); err == nil {
			if !fi.IsDir() {
				return fs.SkipDir // the task deleted or replaced it: a whiteout
			}
			return nil
		}
		mode := fs.FileMode(0o755)
		if fi, err := d.Info(); err == nil {
			mode = fi.Mode().Perm() | 0o700
		}
		if err := os.Mkdir(dst, mode); err != nil {
			return err
		}
		return os.Lchown(dst, uid, gid)
	})
}

func owner(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// shareVolumes are the overlay mounts of the task's prepared shared folders.
func (b *Sandbox) shareVolumes(r Run) []docker.VolumeMount {
	var out []docker.VolumeMount
	for _, sh := range b.shares(r) {
		if _, err := os.Stat(sh.upper); err != nil {
			continue // not prepared: never mount a folder we did not set up
		}
		out = append(out, docker.VolumeMount{
			Name:    sh.volume,
			Target:  workerproto.Workspace + "/" + sh.path,
			Labels:  map[string]string{LabelManaged: "true", LabelShareRepo: repoKey(b.cfg.Repo), LabelTaskKey: r.Folder},
			Overlay: &docker.Overlay{Lower: sh.lower, Upper: sh.upper, Work: sh.work},
		})
	}
	return out
}

// ReleaseShares removes the task's share volumes once no container uses them.
// Only the engine's record goes: the writable layers stay in the task's state
// folder, so a follow-up sees the task's own dependency changes again.
func (b *Sandbox) ReleaseShares(ctx context.Context, r Run) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, sh := range b.shares(r) {
		if err := b.rt.RemoveVolume(cctx, sh.volume); err != nil {
			r.Log.Warn("remove share volume", zap.String("volume", sh.volume), zap.Error(err))
		}
	}
}

// exposesRepo reports whether mounting dir would show the repository's own
// folder (or one above it) or anything inside its .git.
func exposesRepo(dir, repo string) bool {
	if r, err := filepath.EvalSymlinks(repo); err == nil {
		repo = r
	}
	within := func(p, root string) bool {
		rel, err := filepath.Rel(root, p)
		return err == nil && (rel == "." || (rel != ".." && !strings.HasPrefix(rel, "../")))
	}
	return within(repo, dir) || within(dir, filepath.Join(repo, ".git"))
}

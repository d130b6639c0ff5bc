package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// The verify command sees the worktree through an overlay whose writable
// layer is thrown away after the round: build outputs, reports and anything
// else it writes never reach the change, which stays the agent's work alone.
// The layers live in the task's state folder, which no container mounts, so
// no container can have planted a symlink where they are made.

// verifyLayers are the host folders of one verify round's overlay.
func verifyLayers(r Run) (upper, work string) {
	dir := filepath.Join(r.StateDir, "verify")
	return filepath.Join(dir, "upper"), filepath.Join(dir, "work")
}

// VerifyVolume prepares a fresh overlay of the worktree for one verify round.
func (b *Sandbox) VerifyVolume(r Run, round int) (docker.VolumeMount, error) {
	upper, work := verifyLayers(r)
	if err := os.RemoveAll(filepath.Dir(upper)); err != nil {
		return docker.VolumeMount{}, fmt.Errorf("prepare the verify overlay: %w", err)
	}
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return docker.VolumeMount{}, fmt.Errorf("prepare the verify overlay: %w", err)
		}
	}
	// The merged folder's root takes the upper layer's owner: the container
	// user must be able to create files at the top of the workspace.
	if uid, gid, err := ParseUser(b.cfg.User); err == nil && os.Geteuid() == 0 {
		if err := os.Lchown(upper, uid, gid); err != nil {
			return docker.VolumeMount{}, fmt.Errorf("prepare the verify overlay: %w", err)
		}
	}
	return docker.VolumeMount{
		Name:    fmt.Sprintf("trakkar-verify-%s-%s-%d", repoKey(b.cfg.Repo), runSlug(r), round),
		Target:  workerproto.Workspace,
		Labels:  map[string]string{LabelManaged: "true", LabelShareRepo: repoKey(b.cfg.Repo), LabelTaskKey: r.Folder},
		Overlay: &docker.Overlay{Lower: r.Worktree, Upper: upper, Work: work},
	}, nil
}

// ReleaseVerifyVolume drops a round's overlay once its container is gone.
func (b *Sandbox) ReleaseVerifyVolume(ctx context.Context, r Run, vol docker.VolumeMount) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := b.rt.RemoveVolume(cctx, vol.Name); err != nil {
		r.Log.Warn("remove verify overlay volume", zap.String("volume", vol.Name), zap.Error(err))
	}
	upper, _ := verifyLayers(r)
	if err := os.RemoveAll(filepath.Dir(upper)); err != nil {
		r.Log.Warn("remove verify overlay layers", zap.Error(err))
	}
}

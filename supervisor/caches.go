package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/trakkar/trakkar-agent/internal/docker"
)

// Labels on the volumes the supervisor creates. Volumes are keyed per
// repository so two checkouts never read each other's caches, and so pruning
// one repository leaves the others alone.
const (
	LabelCacheRepo = "in.trakkar.agent.cache-repo" // repoKey of the repository
	LabelCacheTool = "in.trakkar.agent.cache"      // which package manager
	LabelShareRepo = "in.trakkar.agent.share-repo" // repoKey, on per-task share volumes
)

// CacheDir is where the cache volumes are mounted inside task containers. The
// worker images create one folder per tool there with mode 1777: a new volume
// takes the ownership and mode of the image folder it is first mounted over,
// which makes it writable by whatever non-root uid the tasks run as.
const CacheDir = "/trakkar/cache"

// cacheTool is one package manager's cache: its volume suffix and the
// environment that points the tool at the mounted volume.
type cacheTool struct {
	name string
	env  []string // variable names set to the mount path
}

// cacheTools are the caches every task container gets. pnpm has no variable
// of its own for the store: it reads npm-style configuration from the
// environment (npm_config_* up to pnpm 10, pnpm_config_* from 11), so both are
// set; npm itself ignores store-dir.
var cacheTools = []cacheTool{
	{"npm", []string{"npm_config_cache"}},
	{"yarn", []string{"YARN_CACHE_FOLDER"}},
	{"pnpm", []string{"npm_config_store_dir", "pnpm_config_store_dir"}},
	{"pip", []string{"PIP_CACHE_DIR"}},
	{"go-mod", []string{"GOMODCACHE"}},
	{"go-build", []string{"GOCACHE"}},
	{"cargo", []string{"CARGO_HOME"}},
}

// repoKey identifies a repository in volume names and labels.
func repoKey(repo string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(repo)))
	return hex.EncodeToString(sum[:6])
}

// CacheVolumeName is the name of a repository's cache volume for one tool.
func CacheVolumeName(repo, tool string) string {
	return "trakkar-cache-" + repoKey(repo) + "-" + tool
}

// cacheVolumes are the cache mounts of a task container; nil when caches are off.
func (s *Supervisor) cacheVolumes() []docker.VolumeMount {
	if !s.cfg.DependencyCaches {
		return nil
	}
	key := repoKey(s.cfg.Repo)
	out := make([]docker.VolumeMount, 0, len(cacheTools))
	for _, t := range cacheTools {
		out = append(out, docker.VolumeMount{
			Name:   CacheVolumeName(s.cfg.Repo, t.name),
			Target: CacheDir + "/" + t.name,
			Labels: map[string]string{LabelManaged: "true", LabelCacheRepo: key, LabelCacheTool: t.name},
		})
	}
	return out
}

// cacheEnv points the package managers at the cache mounts.
func (s *Supervisor) cacheEnv() []string {
	if !s.cfg.DependencyCaches {
		return nil
	}
	var env []string
	for _, t := range cacheTools {
		for _, name := range t.env {
			env = append(env, name+"="+CacheDir+"/"+t.name)
		}
	}
	return env
}

// CacheRuntime is what dropping cache volumes needs from the container runtime.
type CacheRuntime interface {
	ListVolumes(ctx context.Context, labels map[string]string) ([]docker.Volume, error)
	RemoveVolume(ctx context.Context, name string) error
}

// PruneCaches removes repo's dependency cache volumes, and share volumes a
// crashed run left behind, and returns how many it removed. A volume still
// used by a task container is kept and reported in the error.
func PruneCaches(ctx context.Context, rt CacheRuntime, repo string) (int, error) {
	if rt == nil || repo == "" {
		return 0, errors.New("prune caches: runtime and repository are required")
	}
	key := repoKey(repo)
	var vols []docker.Volume
	for _, label := range []string{LabelCacheRepo, LabelShareRepo} {
		vs, err := rt.ListVolumes(ctx, map[string]string{label: key})
		if err != nil {
			return 0, fmt.Errorf("prune caches: %w", err)
		}
		vols = append(vols, vs...)
	}
	n := 0
	var errs []error
	for _, v := range vols {
		if err := rt.RemoveVolume(ctx, v.Name); err != nil {
			errs = append(errs, fmt.Errorf("volume %s (in use by a task container?): %w", v.Name, err))
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("prune caches: %w", err)
	}
	return n, nil
}

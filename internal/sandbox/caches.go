package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/trakkar/trakkar-agent/internal/docker"
)

// Labels on the volumes the supervisor creates. Cache volumes belong to one
// task of one repository: a task can write anything into its caches (a module
// edited in the module cache, a cargo config naming a rustc wrapper, a forged
// build result), so no other task may ever mount them.
const (
	LabelCacheRepo = "in.trakkar.agent.cache-repo" // repoKey of the repository
	LabelCacheTool = "in.trakkar.agent.cache"      // which package manager
	LabelCacheRole = "in.trakkar.agent.cache-role" // CacheAgent or CacheVerify
	LabelShareRepo = "in.trakkar.agent.share-repo" // repoKey, on per-task share volumes
)

// Cache roles: the agent's containers and the verify containers of a task
// never share a volume, so verify never trusts what the agent could have
// written there (a pre-seeded GOCACHE turns `go test` into `ok (cached)`).
const (
	CacheAgent  = "agent"
	CacheVerify = "verify"
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

// CacheVolumeName is the name of one task's cache volume for one tool and
// role; task is the task's folder key. The role and tool come last from fixed
// sets, so two different triples never give the same name.
func CacheVolumeName(repo, task, role, tool string) string {
	return "trakkar-cache-" + repoKey(repo) + "-" + task + "-" + role + "-" + tool
}

// CacheVolumes are the cache mounts of a task's containers of role; nil when
// caches are off. They are kept across the task's runs (follow-ups, fix and
// verify rounds reuse them) until prune removes the task.
func (b *Sandbox) CacheVolumes(r Run, role string) []docker.VolumeMount {
	if !b.cfg.DependencyCaches {
		return nil
	}
	key := repoKey(b.cfg.Repo)
	out := make([]docker.VolumeMount, 0, len(cacheTools))
	for _, t := range cacheTools {
		out = append(out, docker.VolumeMount{
			Name:   CacheVolumeName(b.cfg.Repo, r.Folder, role, t.name),
			Target: CacheDir + "/" + t.name,
			Labels: map[string]string{LabelManaged: "true", LabelCacheRepo: key, LabelTaskKey: r.Folder,
				LabelCacheRole: role, LabelCacheTool: t.name},
		})
	}
	return out
}

// cacheEnv points the package managers at the cache mounts.
func (b *Sandbox) cacheEnv() []string {
	if !b.cfg.DependencyCaches {
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

// PruneCaches removes repo's dependency cache volumes (every task's), and
// share volumes a crashed run left behind, and returns how many it removed. A
// volume still used by a task container is kept and reported in the error.
func PruneCaches(ctx context.Context, rt CacheRuntime, repo string) (int, error) {
	if rt == nil || repo == "" {
		return 0, errors.New("prune caches: runtime and repository are required")
	}
	key := repoKey(repo)
	return removeVolumes(ctx, rt, "prune caches", map[string]string{LabelCacheRepo: key}, map[string]string{LabelShareRepo: key})
}

// PruneTaskCaches removes the cache volumes of one task of repo.
func PruneTaskCaches(ctx context.Context, rt CacheRuntime, repo, task string) (int, error) {
	return removeVolumes(ctx, rt, "remove task caches", map[string]string{LabelCacheRepo: repoKey(repo), LabelTaskKey: task})
}

// removeVolumes removes the volumes matching any of the label sets.
func removeVolumes(ctx context.Context, rt CacheRuntime, what string, sets ...map[string]string) (int, error) {
	var vols []docker.Volume
	for _, labels := range sets {
		vs, err := rt.ListVolumes(ctx, labels)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
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
		return n, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

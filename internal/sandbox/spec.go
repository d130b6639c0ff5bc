package sandbox

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// RoleVerify marks a task's verify containers (LabelRole).
const RoleVerify = "verify"

// Where each provider keeps its state inside the container. The folder is the
// task's agent dir on the host, mounted read-write, so the next container of the
// same task finds the conversation again.
const (
	claudeConfigDir = "/trakkar/state/claude"
	cursorStateDir  = "/home/agent/.cursor"
)

// agentGitDir is where the agent's disposable repository is mounted.
const agentGitDir = "/trakkar/git"

// AgentSpec is the spec of the run's agent container, before its network is
// applied.
func (b *Sandbox) AgentSpec(r Run) docker.Spec {
	env := append([]string{"HOME=/home/agent", "CLAUDE_CONFIG_DIR=" + claudeConfigDir}, b.cfg.ModelEnv...)
	env = append(env, b.cacheEnv()...)
	var scratch []docker.Mount
	if r.Scratch {
		env = append(env, "GIT_DIR="+agentGitDir, "GIT_WORK_TREE="+workerproto.Workspace)
		scratch = []docker.Mount{{Source: r.GitDir, Target: agentGitDir}}
	}
	spec := docker.Spec{
		Name:       ContainerName(r),
		Image:      b.cfg.Image,
		Env:        env,
		User:       b.cfg.User,
		WorkingDir: workerproto.Workspace,
		Labels:     b.Labels(r),
		Runtime:    b.cfg.Runtime,
		Mounts: []docker.Mount{
			{Source: r.Worktree, Target: workerproto.Workspace},
			{Source: r.InDir, Target: workerproto.InDir, ReadOnly: true},
			{Source: r.OutDir, Target: workerproto.OutDir},
			{Source: r.AgentDir, Target: "/trakkar/state"},
			{Source: filepath.Join(r.AgentDir, "cursor"), Target: cursorStateDir},
		},
		Volumes: append(b.CacheVolumes(r, CacheAgent), b.shareVolumes(r)...),
		Tmpfs: map[string]string{
			"/tmp":        "rw,exec,nosuid,nodev,size=1g,mode=1777",
			"/home/agent": "rw,nosuid,nodev,size=256m,mode=1777",
		},
		Resources:  b.cfg.Resources,
		LogMaxSize: b.cfg.LogMaxSize,
	}
	spec.Mounts = append(spec.Mounts, scratch...)
	return spec
}

// VerifySpec is the agent's container spec (image, user, hardening, limits,
// shared folders) with the task's verify caches, running the command under
// sh -c, with only the worktree (through the round's throw-away overlay, wt)
// and no model credential: the command runs the repository's code, which the
// agent may have written.
func (b *Sandbox) VerifySpec(r Run, cmd string, round int, wt docker.VolumeMount) docker.Spec {
	spec := b.AgentSpec(r)
	spec.Name = ContainerName(r) + fmt.Sprintf("-verify-%d", round)
	spec.Entrypoint = []string{"/bin/sh", "-c"}
	spec.Cmd = []string{cmd}
	spec.Env = append([]string{"HOME=/home/agent"}, b.cacheEnv()...)
	spec.Labels[LabelRole] = RoleVerify
	spec.Mounts = nil
	// Caches of its own: the agent's could hold forged build and test results.
	spec.Volumes = append(append([]docker.VolumeMount{wt}, b.CacheVolumes(r, CacheVerify)...), b.shareVolumes(r)...)
	return spec
}

// withoutEnv drops the named variables from env.
func withoutEnv(env, names []string) []string {
	if len(names) == 0 {
		return env
	}
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

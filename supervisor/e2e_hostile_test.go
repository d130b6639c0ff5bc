package supervisor_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakeagent"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/importpolicy"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// The hostile suite runs the fake claude's `hostile` scenario (internal/fakeagent/
// hostile*.go): each task is a prompt-injected agent attacking the sandbox from
// inside its container. Every subtest asserts containment from the host side AND
// that the attack really ran (its PLANTED/BLOCKED lines), so none passes vacuously.
// The fake's own unit tests prove each payload fires against a naive host git.

// Limits of the hostile runner, small enough for the resource attacks to hit.
const (
	hostileMemory   = 128 << 20
	hostilePids     = 128
	hostileMaxBytes = 256 << 10
	hostileMaxFiles = 40
)

// hostileLines returns every HOSTILE report line of a run's events (logged, so
// `go test -v` shows what each attack saw).
func hostileLines(t *testing.T, rv standin.RunView) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(eventTexts(rv.Events), "\n") {
		if i := strings.Index(l, "HOSTILE "); i >= 0 {
			out = append(out, l[i:])
		}
	}
	t.Logf("%s: %d hostile lines:\n%s", rv.Run.ID, len(out), strings.Join(out, "\n"))
	return out
}

// requireLines fails unless, for every fragment, some line starts with prefix
// and contains it.
func requireLines(t *testing.T, lines []string, prefix string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		ok := false
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, f) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("no %q line containing %q in:\n%s", prefix, f, strings.Join(lines, "\n"))
		}
	}
}

// noneFound fails on any FOUND line: the fake reports a containment failure so.
func noneFound(t *testing.T, lines []string) {
	t.Helper()
	for _, l := range lines {
		if strings.HasPrefix(l, "HOSTILE FOUND") {
			t.Errorf("containment failed: %s", l)
		}
	}
}

// emptyDir fails if anything appeared in dir (a fired canary).
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("canary fired on the host: %s", filepath.Join(dir, e.Name()))
	}
}

// noCanary fails if a canary whose name starts with one of prefixes fired.
func noCanary(t *testing.T, dir string, prefixes ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) {
				t.Errorf("canary fired on the host: %s", e.Name())
			}
		}
	}
}

// findNamed returns every path below root whose base name is name.
func findNamed(t *testing.T, root, name string) []string {
	t.Helper()
	var hits []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func hostileTask(t *testing.T, e *env, key, title string, lines ...string) {
	t.Helper()
	desc := "fake:scenario=hostile\n" + strings.Join(lines, "\n") + "\n"
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: title, Description: desc}); err != nil {
		t.Fatal(err)
	}
}

// succeededWithPR fails unless the run opened a PR, and returns its branch files.
func succeededWithPR(t *testing.T, e *env, rv standin.RunView) map[string]string {
	t.Helper()
	c := rv.Completion
	if c.Outcome != trakkar.OutcomeSucceeded || c.PullRequest == nil {
		t.Fatalf("outcome %q pr %v error %q\n%s", c.Outcome, c.PullRequest, deref(c.Error), eventTexts(rv.Events))
	}
	_, files := e.gh.Branch(t, "acme", "web", c.PullRequest.Branch)
	return files
}

// hostileRuntime is one container runtime the hostile suite runs under.
type hostileRuntime struct {
	name    string
	runtime string // --runtime; "" is the engine's default (runc)
	network string // --network; gVisor here runs with --network=none only
}

// apply puts the runtime and its network mode into a supervisor config.
func (r hostileRuntime) apply(c *supervisor.Config) {
	c.Runtime = r.runtime
	if r.network != "" {
		c.Network = r.network
	}
}

// hostileRuntimes: the engine's default runtime and gVisor, registered by
// .ci/run as "runsc" with --network=none. A missing runsc fails the suite.
var hostileRuntimes = []hostileRuntime{
	{name: "runc", network: supervisor.NetworkOpen}, // the product's default
	{name: "runsc", runtime: "runsc", network: supervisor.NetworkNone},
}

// forEachRuntime runs a hostile case once per runtime, as parallel subtests.
func forEachRuntime(t *testing.T, fn func(t *testing.T, rt hostileRuntime)) {
	t.Helper()
	eachRuntime(t, true, fn)
}

// eachRuntime runs a hostile case once per runtime, as subtests that run
// side by side when sideBySide is set.
func eachRuntime(t *testing.T, sideBySide bool, fn func(t *testing.T, rt hostileRuntime)) {
	t.Helper()
	for _, rt := range hostileRuntimes {
		t.Run(rt.name, func(t *testing.T) {
			if sideBySide {
				parallel(t)
			}
			if rt.runtime != "" {
				dc := testimage.Docker(t)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				ok, err := dc.HasRuntime(ctx, rt.runtime)
				if err != nil || !ok {
					t.Fatalf("the %s runtime is not registered with the engine (see README, gVisor): %v", rt.runtime, err)
				}
			}
			fn(t, rt)
		})
	}
}

// One supervisor runs every attack at once, next to ordinary tasks, with small
// memory, pids and import caps. The user's trusted git config is the dangerous
// kind real users have: a husky hooksPath, custom filter/diff/merge drivers in the
// repository config and git-lfs in the global config, all pointing at canaries.
//
// Serial, one runtime after the other: each sets the process's environment
// (an env canary, the user's HOME), and eleven tasks at once per runtime take
// longer side by side on a small host than in turn.
func TestHostileAgentIsContained(t *testing.T) {
	eachRuntime(t, false, hostileContainment)
}

func hostileContainment(t *testing.T, rt hostileRuntime) {
	envCanary := randomSecret(t, "trakkar_canary_")
	t.Setenv("TRAKKAR_CANARY_SECRET", envCanary)
	e := newEnv(t, envOpts{lease: 5})
	canary := t.TempDir() // no payload may ever create anything here
	touch := func(name string) string { return "touch '" + filepath.Join(canary, name) + "'" }
	for _, kv := range [][2]string{
		{"core.hooksPath", ".husky"},
		{"filter.evil.clean", touch("filter-clean") + "; tr a-z A-Z"},
		{"filter.evil.smudge", touch("filter-smudge") + "; cat"},
		{"filter.evil.required", "true"},
		{"diff.evil.textconv", touch("textconv") + "; cat"},
		{"diff.evil.command", touch("diff-command") + "; true"},
		{"merge.evil.driver", touch("merge-driver") + "; false"},
	} {
		gitCmd(t, e.repo, "config", kv[0], kv[1])
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(fmt.Sprintf(
		"[filter \"lfs\"]\n\tclean = %q\n\tsmudge = %q\n\tprocess = %q\n\trequired = true\n[diff \"lfs\"]\n\ttextconv = %q\n",
		touch("lfs-clean")+"; cat", touch("lfs-smudge")+"; cat", touch("lfs-process"), touch("lfs-textconv")+"; cat")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)

	// The host directory a state-symlink attack aims at: owned by the container
	// user, as the user's own home is when the runner runs as that user.
	target := t.TempDir()
	if err := os.WriteFile(filepath.Join(target, "sentinel"), []byte("host data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(func(c *supervisor.Config) {
		c.MaxConcurrency = 16
		c.Resources = docker.Resources{MemoryBytes: hostileMemory, NanoCPUs: 1e9, PidsLimit: hostilePids}
		// Only workflows are protected here: the husky case must reach the commit to
		// show its hooks never run (.husky/** is protected by default).
		c.Policy = importpolicy.Options{MaxFileBytes: hostileMaxBytes, MaxFiles: hostileMaxFiles,
			Protected: []string{".github/workflows/**"}}
		rt.apply(c)
	})
	if uid, gid, ok := strings.Cut(cfg.ContainerUser, ":"); ok && os.Geteuid() == 0 {
		u, _ := strconv.Atoi(uid)
		g, _ := strconv.Atoi(gid)
		if err := os.Chown(target, u, g); err != nil {
			t.Fatal(err)
		}
	}

	victim := hostgit.Slug("HOS-7", 60)
	marker := "HOSTILE-NEIGHBOUR-MARKER"
	hostileTask(t, e, "HOS-1", "Planted .git pointer", "fake:attack=git-pointer canary="+canary)
	hostileTask(t, e, "HOS-2", "Husky hooks", "fake:attack=husky canary="+canary)
	hostileTask(t, e, "HOS-3", "Attributes select drivers", "fake:attack=gitattributes")
	hostileTask(t, e, "HOS-4", "Refused shapes",
		"fake:attack=nested-git canary="+canary, "fake:attack=bare-repo canary="+canary, "fake:attack=dotgit-alias canary="+canary,
		"fake:attack=gitmodules", "fake:attack=symlink-abs", "fake:attack=symlink-up",
		fmt.Sprintf("fake:attack=big-file kb=%d", 2*hostileMaxBytes>>10),
		fmt.Sprintf("fake:attack=many-files n=%d", hostileMaxFiles+10), "fake:attack=workflow")
	hostileTask(t, e, "HOS-5", "Steal secrets", "fake:attack=secrets want="+fakeagent.EncodeSecret("model-key", modelKey)+
		" forbid="+fakeagent.EncodeSecret("github-token", ghToken)+" forbid="+fakeagent.EncodeSecret("trakkar-token", agentToken)+
		" forbid="+fakeagent.EncodeSecret("env-canary", envCanary))
	hostileTask(t, e, "HOS-6", "Reach the neighbour", "fake:attack=neighbor victim="+victim+" marker="+marker)
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "HOS-7", Title: "Ordinary task next to the attacks",
		Description: "Write a note.\nfake:scenario=slow\nfake:delay=400ms\nfake:write=victim.txt=the victim's own work\n"}); err != nil {
		t.Fatal(err)
	}
	hostileTask(t, e, "HOS-8", "Probe the sandbox", "fake:attack=sandbox")
	hostileTask(t, e, "HOS-9", "Fork bomb", "fake:attack=forkbomb depth=12 secs=3")
	hostileTask(t, e, "HOS-10", "Memory hog", fmt.Sprintf("fake:attack=memhog mb=%d", 4*hostileMemory>>20))
	stateAttack := "fake:attack=state-symlink target=" + target + " marker=" + marker + " sentinel=sentinel"
	hostileTask(t, e, "HOS-11", "Swap the state dir for a symlink", stateAttack, "fake:write=state.txt=first")
	e.start(cfg)

	runs := map[string]standin.RunView{}
	for _, k := range []string{"HOS-1", "HOS-2", "HOS-3", "HOS-4", "HOS-5", "HOS-6", "HOS-7", "HOS-8", "HOS-9", "HOS-10", "HOS-11"} {
		runs[k] = e.waitCompleted(k, 150*time.Second)
	}
	// The follow-up of HOS-11 is the run that would mount the planted symlink. A
	// resumed session's prompt is the new message alone, so it repeats the attack.
	tv, _ := e.stand.TaskByKey("HOS-11")
	if _, err := e.stand.PostMessage(tv.Task.ID, "Once more.\nfake:scenario=hostile\n"+stateAttack+"\nfake:write=state.txt=second"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "follow-up of HOS-11", func() bool {
		tv, _ := e.stand.TaskByKey("HOS-11")
		return len(tv.Runs) == 2 && tv.Runs[1].Completion != nil
	})
	tv, _ = e.stand.TaskByKey("HOS-11")
	followUp := tv.Runs[1]

	// Protection: host git never discovers a repository in the worktree (explicit
	// --git-dir/--work-tree with cwd outside it) and neutralises config-named
	// programs (-c core.fsmonitor=false, core.hooksPath=/dev/null, empty
	// credential.helper…). If host git ran in the worktree, `add -A` alone would run
	// the planted fsmonitor. The run must still publish: the whole
	// stage/commit/push/remove path ran over the planted pointer.
	t.Run("planted git pointer", func(t *testing.T) {
		rv := runs["HOS-1"]
		lines := hostileLines(t, rv)
		requireLines(t, lines, "HOSTILE PLANTED git-pointer:", ".trakkar-evil-gitdir")
		requireLines(t, lines, "HOSTILE BLOCKED git-pointer:", "pointer-direct")
		noneFound(t, lines)
		noCanary(t, canary, "pointer-")
		files := succeededWithPR(t, e, rv)
		if files["hostile-pointer.txt"] == "" {
			t.Errorf("the agent's ordinary file was not published: %v", keysOf(files))
		}
		for f := range files {
			if strings.Contains(f, "evil-gitdir") || f == ".git" || strings.HasPrefix(f, ".git/") {
				t.Errorf("git metadata published: %s", f)
			}
		}
	})

	// Protection: -c core.hooksPath=/dev/null on every host git call. The user's
	// trusted config says core.hooksPath=.husky (agent-writable); --no-verify alone
	// would still run prepare-commit-msg and post-commit (design E2).
	t.Run("husky hooks", func(t *testing.T) {
		rv := runs["HOS-2"]
		lines := hostileLines(t, rv)
		requireLines(t, lines, "HOSTILE PLANTED husky:", "executable hooks in .husky/")
		noneFound(t, lines)
		noCanary(t, canary, "husky-")
		files := succeededWithPR(t, e, rv)
		if !strings.Contains(files[".husky/pre-commit"], "husky-pre-commit") {
			t.Errorf("the hooks were not in the tree host git committed: %v", keysOf(files))
		}
	})

	// Protection: hostgit empties every filter driver of the repository config for
	// staging (filterOverrides), reads no user global config (own HOME and
	// GIT_CONFIG_GLOBAL), and runs no porcelain diff (no textconv, no external
	// diff). If the clean filter ran, the canary fires and the file is uppercased.
	t.Run("gitattributes drivers", func(t *testing.T) {
		rv := runs["HOS-3"]
		requireLines(t, hostileLines(t, rv), "HOSTILE PLANTED gitattributes:", "filter, diff and merge driver evil")
		noCanary(t, canary, "filter-", "textconv", "diff-command", "merge-driver", "lfs-")
		files := succeededWithPR(t, e, rv)
		if got := files["hostile-attrs.txt"]; got != "lowercase payload from the agent\n" {
			t.Errorf("the file went through a filter: %q", got)
		}
		if !strings.Contains(files[".gitattributes"], "filter=evil") {
			t.Errorf("the attributes were not in the tree: %v", keysOf(files))
		}
	})

	// Protection: the import policy, before anything is committed. Each shape is
	// refused under its own rule; removing any one rule drops its entry from the
	// error. The nested and aliased gitdirs' evil configs must not run either.
	t.Run("import policy refusals", func(t *testing.T) {
		rv := runs["HOS-4"]
		lines := hostileLines(t, rv)
		for _, a := range []string{"nested-git", "bare-repo", "dotgit-alias", "gitmodules", "symlink-abs", "symlink-up", "big-file", "many-files", "workflow"} {
			requireLines(t, lines, "HOSTILE PLANTED "+a+":", "")
		}
		noCanary(t, canary, "nested-", "dotgit-")
		if rv.Completion.Outcome != trakkar.OutcomeFailed || rv.Completion.PullRequest != nil {
			t.Fatalf("outcome %q pr %v\n%s", rv.Completion.Outcome, rv.Completion.PullRequest, eventTexts(rv.Events))
		}
		msg := deref(rv.Completion.Error)
		for _, want := range []string{
			"hostile-nested (nested repository (gitlink))",
			"(laid out as a bare git repository)",
			".GIT/config (git metadata)",
			"git~1/config (git metadata)",
			".gitmodules (submodule configuration)",
			"hostile-passwd (symlink to absolute path /etc/passwd)",
			"hostile-main (symlink to ../../ leaves the tree)",
			fmt.Sprintf("hostile-big.bin (%d bytes, limit %d)", 2*hostileMaxBytes, hostileMaxBytes),
			".github/workflows/ci.yml (protected by .github/workflows/**)",
			fmt.Sprintf("limit %d", hostileMaxFiles),
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal lacks %q:\n%s", want, msg)
			}
		}
		if !hasEvent(rv.Events, trakkar.EventError, "refused") {
			t.Errorf("refusal not shown in the task:\n%s", eventTexts(rv.Events))
		}
		for _, pr := range e.gh.PRs("acme", "web") {
			if strings.HasPrefix(pr.Head, "trakkar/hos-4-") {
				t.Errorf("a PR was opened for the refused change: %+v", pr)
			}
		}
		if out := gitCmd(t, e.repo, "branch", "--list", "trakkar/hos-4-*", "--format=%(objectname)"); out != gitCmd(t, e.repo, "rev-parse", "origin/main") {
			t.Errorf("the refused change was committed: branch at %q", out)
		}
	})

	// Protection: the container gets only the model credential (containerSpec's
	// explicit env, no host env, no secret mounts); the GitHub and Trakkar tokens
	// stay in the supervisor. The scan covers the environment, every readable
	// /proc/*/environ and cmdline, and every file under every mount; finding the
	// allowed model key shows it can see what is there.
	t.Run("secrets are not readable inside", func(t *testing.T) {
		rv := runs["HOS-5"]
		lines := hostileLines(t, rv)
		noneFound(t, lines)
		requireLines(t, lines, "HOSTILE BLOCKED secrets:", "forbidden github-token not found",
			"forbidden trakkar-token not found", "forbidden env-canary not found")
		requireLines(t, lines, "HOSTILE INFO secrets:", "allowed model-key visible in os.Environ", "/proc/self/environ")
		var files, environ, mounts int
		for _, l := range lines {
			if strings.HasPrefix(l, "HOSTILE SCANNED secrets:") {
				_, _ = fmt.Sscanf(l[strings.Index(l, "files="):], "files=%d bytes=%d environ=%d mounts=%d", &files, new(int64), &environ, &mounts)
			}
		}
		if files < 5 || environ < 2 || mounts < 5 {
			t.Errorf("the scan covered too little (files=%d environ=%d mounts=%d):\n%s", files, environ, mounts, strings.Join(lines, "\n"))
		}
	})

	// Protection: each container sees only its own worktree; other tasks'
	// worktrees, the main checkout and its .git are not mounted, and the root
	// filesystem is read-only. The attack learns real host paths (the .git pointer,
	// mountinfo) and still reaches nothing.
	t.Run("another task's worktree", func(t *testing.T) {
		lines := hostileLines(t, runs["HOS-6"])
		noneFound(t, lines)
		requireLines(t, lines, "HOSTILE BLOCKED neighbor:",
			"into "+filepath.Join(e.repo, ".trakkar-worktrees", victim)+":",
			"into "+filepath.Join(e.repo, ".git", "hooks")+":",
			"into /:") // /workspace/.. is the container's read-only root
		if hits := findNamed(t, e.repo, marker); len(hits) > 0 {
			t.Errorf("marker written on the host: %v", hits)
		}
		files := succeededWithPR(t, e, runs["HOS-7"])
		if len(files) != 2 || files["victim.txt"] != "the victim's own work" {
			t.Errorf("the victim's branch was touched: %v", files)
		}
	})

	// Protection: cap-drop ALL, no-new-privileges, the default seccomp profile, a
	// read-only root, no engine socket, no devices, private pid namespace.
	t.Run("sandbox hardening", func(t *testing.T) {
		lines := hostileLines(t, runs["HOS-8"])
		noneFound(t, lines)
		requireLines(t, lines, "HOSTILE BLOCKED sandbox:",
			"no engine socket at /var/run/docker.sock", "no engine socket at /run/docker.sock",
			"runs as uid", "no capabilities", "write to /: open /hostile-root-write:", "write to /etc: open /etc/hostile-write:",
			"open the agent CLI binary for writing:", "core_pattern for writing:",
			"create a cgroup", "setuid(0):", "mount a tmpfs:", "open a raw socket:", "open_by_handle_at",
			"no block devices", "no host process visible")
		if rt.runtime == "runsc" {
			// gVisor's kernel reports neither NoNewPrivs nor a seccomp filter, and
			// its namespaces never reach the host kernel.
			requireLines(t, lines, "HOSTILE BLOCKED sandbox:", "the kernel is gVisor's")
		} else {
			requireLines(t, lines, "HOSTILE BLOCKED sandbox:", "NoNewPrivs is 1", "Seccomp is 2 (filter)",
				"write to /: open /hostile-root-write: read-only file system", "create user and mount namespaces:")
		}
		for _, l := range lines {
			if strings.Contains(l, "/proc/1/fd/1") {
				t.Logf("known limitation: %s", l)
			}
		}
	})

	// Protection: PidsLimit and Memory (= MemorySwap) on the container. The bomb's
	// forks fail at the cap; the hog is OOM-killed and the run says so; the
	// ordinary tasks beside them published.
	t.Run("fork bomb and memory hog", func(t *testing.T) {
		lines := hostileLines(t, runs["HOS-9"])
		noneFound(t, lines)
		if rt.runtime == "runsc" {
			// gVisor's processes are threads of its sandbox; at the pids cap the
			// whole sandbox ends instead of one fork failing.
			requireLines(t, lines, "HOSTILE INFO forkbomb:", "fork bomb started")
			if c := runs["HOS-9"].Completion; c.Outcome != trakkar.OutcomeFailed {
				t.Errorf("fork bomb under gVisor: outcome %q, want failed", c.Outcome)
			}
		} else {
			requireLines(t, lines, "HOSTILE BLOCKED forkbomb:", fmt.Sprintf("pids.max %d, fork failed", hostilePids))
		}
		for _, l := range lines {
			var peak int
			if i := strings.Index(l, "peak "); i >= 0 && strings.HasPrefix(l, "HOSTILE BLOCKED forkbomb:") {
				_, _ = fmt.Sscanf(l[i:], "peak %d", &peak)
				if peak < 10 || peak > hostilePids {
					t.Errorf("bomb peak %d processes, want 10..%d: %s", peak, hostilePids, l)
				}
			}
		}
		hog := runs["HOS-10"]
		lines = hostileLines(t, hog)
		noneFound(t, lines)
		requireLines(t, lines, "HOSTILE INFO memhog:", "holding 64 MiB")
		if hog.Completion.Outcome != trakkar.OutcomeFailed || !strings.Contains(deref(hog.Completion.Error), "out of memory") {
			t.Errorf("hog: outcome %q error %q\n%s", hog.Completion.Outcome, deref(hog.Completion.Error), eventTexts(hog.Events))
		}
		succeededWithPR(t, e, runs["HOS-7"])
	})

	// Protection: the runner never mounts anything the agent could have replaced
	// with a symlink. The first run swaps <state>/cursor (mounted again as
	// ~/.cursor next time) for a symlink to a host directory; the follow-up must
	// not get that directory mounted.
	t.Run("state dir symlink", func(t *testing.T) {
		first := hostileLines(t, runs["HOS-11"])
		requireLines(t, first, "HOSTILE PLANTED state-symlink:", "/trakkar/state/cursor -> "+target)
		second := hostileLines(t, followUp)
		noneFound(t, append(first, second...))
		requireLines(t, second, "HOSTILE BLOCKED state-symlink:", "is not visible at /home/agent/.cursor")
		if hits := findNamed(t, target, marker); len(hits) > 0 {
			t.Errorf("marker written into the host directory: %v", hits)
		}
		if followUp.Completion == nil || followUp.Run.Kind != trakkar.KindFollowUp {
			t.Errorf("follow-up: %+v", followUp.Completion)
		}
	})

	// Across everything: no canary fired, and no secret reached Trakkar, a PR or a
	// pushed branch (ghToken/modelKey/agentToken are also redacted, so the env
	// canary, which the supervisor does not know, is the sharp check for events).
	t.Run("nothing escaped", func(t *testing.T) {
		emptyDir(t, canary)
		secrets := []string{ghToken, agentToken, envCanary}
		for k, rv := range runs {
			text := eventTexts(rv.Events) + deref(rv.Completion.Error) + rv.Completion.Summary
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s: a secret reached Trakkar", k)
				}
			}
		}
		for _, pr := range e.gh.PRs("acme", "web") {
			_, files := e.gh.Branch(t, "acme", "web", pr.Head)
			all := pr.Title + pr.Body
			for _, f := range files {
				all += f
			}
			for _, s := range append(secrets, modelKey) {
				if strings.Contains(all, s) {
					t.Errorf("PR %d (%s) carries a secret", pr.Number, pr.Head)
				}
			}
		}
	})
}

// A FIFO (or a symlink) left where the worker's result belongs must not hang the
// runner or be read through. Protection: readResult opens the file without
// following symlinks and without blocking, and accepts only a regular file.
func TestHostileResultFileCannotHangTheRunner(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, hostileResultFile)
}

func hostileResultFile(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{})
	// The attack leaves its output folder read-only; without root, t.TempDir could
	// not delete it. Registered after newEnv, so it runs before that cleanup.
	t.Cleanup(func() {
		_ = filepath.WalkDir(e.repo, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	hostileTask(t, e, "HOS-20", "Poison the result", "fake:attack=result-fifo")
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "HOS-21", Title: "Ordinary", Description: "fake:write=ok.txt=fine\n"}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(rt.apply))
	rv := e.waitCompleted("HOS-20", 90*time.Second)
	requireLines(t, hostileLines(t, rv), "HOSTILE PLANTED result-fifo:", "/trakkar/out/result.json is a FIFO")
	if rv.Completion.Outcome != trakkar.OutcomeFailed || !strings.Contains(deref(rv.Completion.Error), "result") {
		t.Errorf("outcome %q error %q", rv.Completion.Outcome, deref(rv.Completion.Error))
	}
	succeededWithPR(t, e, e.waitCompleted("HOS-21", 90*time.Second))
}

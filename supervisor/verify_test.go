package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

func TestTailBufferKeepsTheEnd(t *testing.T) {
	var tb tailBuffer
	for i := 0; i < 100; i++ {
		tb.add(fmt.Sprintf("line %d", i))
	}
	lines := strings.Split(tb.String(), "\n")
	if len(lines) != tailLines || lines[0] != "line 40" || lines[len(lines)-1] != "line 99" {
		t.Fatalf("kept %d lines, %q … %q", len(lines), lines[0], lines[len(lines)-1])
	}

	var long tailBuffer
	for i := 0; i < 10; i++ {
		long.add(fmt.Sprintf("%d%s", i, strings.Repeat("é", 600)))
	}
	s := long.String()
	if len(s) > tailChars || !strings.HasPrefix(s, "9") && !strings.Contains(s, "\n9") {
		t.Fatalf("tail of %d bytes, or without the last line", len(s))
	}
	if !strings.HasSuffix(s, "é") || strings.ToValidUTF8(s, "?") != s {
		t.Fatalf("tail cut inside a character")
	}
}

func TestFixPromptQuotesTheFailure(t *testing.T) {
	tests := []struct {
		name string
		v    verifyRound
		want []string
	}{
		{"exit", verifyRound{ExitCode: 2, Tail: "FAIL a\nFAIL b"},
			[]string{"Command: npm test\n", "Result: it exited with code 2\n", "\n    FAIL a\n    FAIL b\n", "Do not weaken"}},
		{"timeout", verifyRound{TimedOut: true, Tail: "hanging"},
			[]string{"timed out after 30s and was killed", "    hanging\n"}},
		{"oom", verifyRound{OOMKilled: true}, []string{"ran out of memory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := fixPrompt("npm test", tc.v, 30*time.Second)
			for _, w := range tc.want {
				if !strings.Contains(p, w) {
					t.Errorf("prompt lacks %q:\n%s", w, p)
				}
			}
		})
	}
}

func TestVerifySection(t *testing.T) {
	passed := verifyRound{Round: 1, Passed: true, Duration: 1520 * time.Millisecond}
	failedRound := verifyRound{Round: 2, ExitCode: 1, Tail: "ok\n```go\nx\n```"}
	tests := []struct {
		name string
		vr   *verifyReport
		want []string
		not  []string
	}{
		{"none", nil, nil, []string{"Verification"}},
		{"passed", &verifyReport{Command: "go test ./...", Rounds: []verifyRound{passed}},
			[]string{"## Verification\n\n`go test ./...` passed in 1.5s.\n"}, []string{"fix round", "failed"}},
		{"passed after a fix", &verifyReport{Command: "make check", Rounds: []verifyRound{{ExitCode: 1}, passed}},
			[]string{"`make check` passed in 1.5s, after 1 fix round by the agent."}, nil},
		{"failed", &verifyReport{Command: "go vet", Rounds: []verifyRound{{ExitCode: 1}, failedRound}},
			[]string{"## Verification failed", "`go vet` exited with code 1, after 1 fix round", "draft", "\n````\nok\n```go\nx\n```\n````\n"}, nil},
		{"command with backticks", &verifyReport{Command: "echo `date`", Rounds: []verifyRound{passed}},
			[]string{"`` echo `date` `` passed"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := verifySection(tc.vr, time.Minute)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("section lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("section has %q:\n%s", n, got)
				}
			}
		})
	}
	body := prBodyVerified(trakkar.Claim{Task: trakkar.Task{Key: "K-1", Title: "T"}},
		"summary", &verifyReport{Command: "true", Rounds: []verifyRound{passed}}, time.Minute)
	if i, j := strings.Index(body, "## Verification"), strings.Index(body, "---\nOpened by"); i < 0 || j < i {
		t.Errorf("verification section not before the footer:\n%s", body)
	}
}

func TestCheckSharePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"node_modules", true},
		{"packages/web/node_modules", true},
		{"./vendor/", true},
		{"", false},
		{".", false},
		{"/abs/node_modules", false},
		{"../elsewhere", false},
		{"a/../../b", false},
		{".git", false},
		{"sub/.GIT/x", false},
		{".trakkar-worktrees", false},
		{"a,b", false},
		{"a:b", false},
	} {
		if err := checkSharePath(tc.path); (err == nil) != tc.ok {
			t.Errorf("checkSharePath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}

func testSupervisor(cfg Config) *Supervisor {
	return &Supervisor{cfg: cfg, log: zap.NewNop(), redact: redact.New(), drainCh: make(chan struct{})}
}

// testRun is a run whose events go nowhere (its lease is gone).
func testRun() *run {
	r := &run{log: zap.NewNop(), stopReq: make(chan struct{}), lost: make(chan struct{})}
	r.markLost()
	return r
}

func TestVerifyVerdict(t *testing.T) {
	s := testSupervisor(Config{Publish: PublishPR, VerifyTimeout: time.Minute})
	failing := &verifyReport{Command: "npm test", Rounds: []verifyRound{{ExitCode: 1}, {ExitCode: 1, Tail: "x\nAssertionError: 1 != 2"}}}
	tests := []struct {
		name        string
		comp        *trakkar.Completion
		vr          *verifyReport
		wantOutcome string
		wantErr     []string
	}{
		{"passed", &trakkar.Completion{Outcome: trakkar.OutcomeSucceeded},
			&verifyReport{Command: "true", Rounds: []verifyRound{{Passed: true}}}, trakkar.OutcomeSucceeded, nil},
		{"no verify", &trakkar.Completion{Outcome: trakkar.OutcomeSucceeded}, nil, trakkar.OutcomeSucceeded, nil},
		{"failed with a draft", &trakkar.Completion{Outcome: trakkar.OutcomeSucceeded, PullRequest: &trakkar.PullRequest{URL: "u", Draft: true}},
			failing, trakkar.OutcomeFailed, []string{"verify failed: npm test exited with code 1 (after 1 fix round)", "AssertionError: 1 != 2"}},
		{"failed, no changes", &trakkar.Completion{Outcome: trakkar.OutcomeNoChanges}, failing, trakkar.OutcomeFailed, []string{"verify failed"}},
		{"push failed first", failed("push branch x: denied"), failing, trakkar.OutcomeFailed, []string{"push branch x: denied"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.verifyVerdict(testRun(), tc.comp, tc.vr)
			if got.Outcome != tc.wantOutcome {
				t.Fatalf("outcome %q, want %q", got.Outcome, tc.wantOutcome)
			}
			for _, w := range tc.wantErr {
				if got.Error == nil || !strings.Contains(*got.Error, w) {
					t.Errorf("error %v lacks %q", got.Error, w)
				}
			}
			if tc.wantErr == nil && got.Error != nil {
				t.Errorf("unexpected error %q", *got.Error)
			}
		})
	}
}

func TestMergeRunsKeepsWhatEarlierRunsSpent(t *testing.T) {
	first := &agentRun{result: &workerproto.Result{Outcome: workerproto.OutcomeSucceeded, Summary: "Added the page.", SessionID: "s1",
		Usage: workerproto.Usage{Turns: 3, CostUSD: 0.5, InputTokens: 10, OutputTokens: 20, DurationMS: 1000}}}
	fix := &agentRun{end: endExited, result: &workerproto.Result{Outcome: workerproto.OutcomeSucceeded, Summary: "Fixed the test.", SessionID: "s1",
		Usage: workerproto.Usage{Turns: 2, CostUSD: 0.25, InputTokens: 5, OutputTokens: 7, DurationMS: 500}}}
	got := mergeRuns(first, fix)
	u := got.result.Usage
	if u.Turns != 5 || u.CostUSD != 0.75 || u.InputTokens != 15 || u.OutputTokens != 27 || u.DurationMS != 1500 {
		t.Errorf("usage %+v", u)
	}
	if !strings.HasPrefix(got.result.Summary, "Added the page.") || !strings.Contains(got.result.Summary, "Fixed the test.") {
		t.Errorf("summary %q", got.result.Summary)
	}
	if first.result.Usage.Turns != 3 {
		t.Errorf("mergeRuns changed the earlier run")
	}
	failedFix := mergeRuns(first, &agentRun{end: endExited, result: &workerproto.Result{Outcome: workerproto.OutcomeFailed, Error: "usage limit"}})
	if failedFix.result.Outcome != workerproto.OutcomeFailed || failedFix.result.Error != "usage limit" {
		t.Errorf("a failed fix round must decide the outcome: %+v", failedFix.result)
	}
}

// Cache volumes are never shared between repositories, tasks, or a task's
// agent and verify containers.
func TestCacheVolumesArePrivate(t *testing.T) {
	ws := func(key string) *workspace { return &workspace{key: key, wt: hostgit.Worktree{Path: "/src/app/wt"}} }
	app := testSupervisor(Config{Repo: "/src/app", DependencyCaches: true, ContainerUser: "1000:1000"})
	base := app.cacheVolumes(ws("web-1"), CacheAgent)
	for _, tc := range []struct {
		name string
		s    *Supervisor
		task string
		role string
	}{
		{"another repository", testSupervisor(Config{Repo: "/src/other", DependencyCaches: true}), "web-1", CacheAgent},
		{"another task", app, "web-2", CacheAgent},
		{"a task key that extends this one", app, "web-1-agent", CacheAgent},
		{"verify of the same task", app, "web-1", CacheVerify},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := tc.s.cacheVolumes(ws(tc.task), tc.role)
			if len(vs) != len(cacheTools) {
				t.Fatalf("%d volumes, want %d", len(vs), len(cacheTools))
			}
			for _, v := range vs {
				for _, b := range base {
					if v.Name == b.Name {
						t.Errorf("shares volume %s", v.Name)
					}
				}
				if v.Labels[LabelTaskKey] != tc.task || v.Labels[LabelCacheRole] != tc.role || v.Labels[LabelCacheRepo] == "" ||
					v.Labels[LabelManaged] != "true" || v.Labels[LabelCacheTool] == "" {
					t.Errorf("labels %v", v.Labels)
				}
				if !strings.HasPrefix(v.Target, CacheDir+"/") || v.Overlay != nil || v.ReadOnly {
					t.Errorf("volume %+v", v)
				}
			}
		})
	}
	if CacheVolumeName("/src/app/", "web-1", CacheAgent, "npm") != CacheVolumeName("/src/app", "web-1", CacheAgent, "npm") {
		t.Errorf("the same repository spelled differently gets another volume")
	}
	// The same task's containers of one role reuse the same volumes.
	if again := app.cacheVolumes(ws("web-1"), CacheAgent); again[0].Name != base[0].Name {
		t.Errorf("a task's next run gets another volume: %s, %s", again[0].Name, base[0].Name)
	}
	// The verify container mounts the verify caches, never the agent's.
	r := &run{claim: trakkar.Claim{Run: trakkar.Run{ID: "run_1"}}, log: zap.NewNop()}
	agent, verify := app.containerSpec(r, ws("web-1")), app.verifySpec(r, ws("web-1"), "go test ./...", 1, docker.VolumeMount{Name: "wt", Target: workerproto.Workspace})
	for _, set := range []struct {
		spec docker.Spec
		role string
	}{{agent, CacheAgent}, {verify, CacheVerify}} {
		n := 0
		for _, v := range set.spec.Volumes {
			if v.Labels[LabelCacheTool] == "" {
				continue
			}
			n++
			if v.Labels[LabelCacheRole] != set.role {
				t.Errorf("%s container mounts %s", set.role, v.Name)
			}
		}
		if n != len(cacheTools) {
			t.Errorf("%s container has %d cache volumes, want %d", set.role, n, len(cacheTools))
		}
	}
	env := strings.Join(app.cacheEnv(), "\n")
	for _, w := range []string{"npm_config_cache=/trakkar/cache/npm", "GOCACHE=/trakkar/cache/go-build",
		"GOMODCACHE=/trakkar/cache/go-mod", "CARGO_HOME=/trakkar/cache/cargo", "PIP_CACHE_DIR=/trakkar/cache/pip",
		"YARN_CACHE_FOLDER=/trakkar/cache/yarn", "pnpm_config_store_dir=/trakkar/cache/pnpm"} {
		if !strings.Contains(env, w) {
			t.Errorf("cache env lacks %s", w)
		}
	}
	if off := testSupervisor(Config{Repo: "/src/app"}); off.cacheVolumes(ws("web-1"), CacheAgent) != nil || off.cacheEnv() != nil {
		t.Errorf("caches mounted although off")
	}
}

func TestSharesDefaultToNodeModules(t *testing.T) {
	repo := t.TempDir()
	ws := &workspace{key: "web-1", stateDir: t.TempDir()}
	s := testSupervisor(Config{Repo: repo, ContainerUser: fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())})
	if got := s.shares(ws); len(got) != 0 {
		t.Fatalf("shared %v without a node_modules", got)
	}
	if err := os.MkdirAll(filepath.Join(repo, "node_modules", "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := s.shareVolumes(ws); len(got) != 0 {
		t.Fatalf("mounted %v before preparing it", got)
	}
	if err := s.prepareShares(ws); err != nil {
		t.Fatal(err)
	}
	vols := s.shareVolumes(ws)
	if len(vols) != 1 || vols[0].Target != "/workspace/node_modules" || vols[0].Overlay == nil ||
		!strings.HasPrefix(vols[0].Overlay.Upper, ws.stateDir) || vols[0].Overlay.Lower != filepath.Join(repo, "node_modules") {
		t.Fatalf("share volumes %+v", vols)
	}
	none := testSupervisor(Config{Repo: repo, Share: []string{}})
	if got := none.shares(ws); len(got) != 0 {
		t.Errorf("an empty share list shared %v", got)
	}
	other := testSupervisor(Config{Repo: repo, Share: []string{"vendor", "node_modules"}})
	if got := other.shares(ws); len(got) != 1 || got[0].path != "node_modules" {
		t.Errorf("explicit shares %+v: a missing folder must be skipped", got)
	}
}

// skeleton gives the container user every folder of lower in upper, never
// follows a symlink and leaves a task's deletions (whiteouts) alone.
func TestSkeleton(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	for _, d := range []string{"a/b", "gone/sub", "kept"} {
		if err := os.MkdirAll(filepath.Join(lower, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "a", "f.js"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(lower, "a"), filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}
	// A deleted folder is a non-folder entry in upper.
	if err := os.WriteFile(filepath.Join(upper, "gone"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = 4321, 4321
	}
	if err := skeleton(lower, upper, uid, gid); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "a/b", "kept"} {
		fi, err := os.Lstat(filepath.Join(upper, d))
		if err != nil || !fi.IsDir() {
			t.Fatalf("%s not mirrored: %v", d, err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", d, st.Uid, st.Gid, uid, gid)
		}
		if fi.Mode().Perm()&0o700 != 0o700 {
			t.Errorf("%s mode %v: owner cannot write", d, fi.Mode())
		}
	}
	for _, p := range []string{"a/f.js", "link", "gone/sub"} {
		if _, err := os.Lstat(filepath.Join(upper, p)); err == nil {
			t.Errorf("%s created in upper", p)
		}
	}
}

package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

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
		if err := CheckSharePath(tc.path, ".trakkar-worktrees"); (err == nil) != tc.ok {
			t.Errorf("CheckSharePath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}

// Cache volumes are never shared between repositories, tasks, or a task's
// agent and verify containers.
func TestCacheVolumesArePrivate(t *testing.T) {
	ws := func(key string) Run { return Run{Folder: key, Worktree: "/src/app/wt"} }
	app := New(Config{Repo: "/src/app", DependencyCaches: true, User: "1000:1000"}, nil, nil)
	base := app.CacheVolumes(ws("web-1"), CacheAgent)
	for _, tc := range []struct {
		name string
		s    *Sandbox
		task string
		role string
	}{
		{"another repository", New(Config{Repo: "/src/other", DependencyCaches: true}, nil, nil), "web-1", CacheAgent},
		{"another task", app, "web-2", CacheAgent},
		{"a task key that extends this one", app, "web-1-agent", CacheAgent},
		{"verify of the same task", app, "web-1", CacheVerify},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := tc.s.CacheVolumes(ws(tc.task), tc.role)
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
	if again := app.CacheVolumes(ws("web-1"), CacheAgent); again[0].Name != base[0].Name {
		t.Errorf("a task's next run gets another volume: %s, %s", again[0].Name, base[0].Name)
	}
	// The verify container mounts the verify caches, never the agent's.
	r := ws("web-1")
	r.RunID = "run_1"
	agent, verify := app.AgentSpec(r), app.VerifySpec(r, "go test ./...", 1, docker.VolumeMount{Name: "wt", Target: workerproto.Workspace})
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
	if off := New(Config{Repo: "/src/app"}, nil, nil); off.CacheVolumes(ws("web-1"), CacheAgent) != nil || off.cacheEnv() != nil {
		t.Errorf("caches mounted although off")
	}
}

func TestSharesDefaultToNodeModules(t *testing.T) {
	repo := t.TempDir()
	ws := Run{Folder: "web-1", StateDir: t.TempDir()}
	s := New(Config{Repo: repo, User: fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())}, nil, nil)
	if got := s.shares(ws); len(got) != 0 {
		t.Fatalf("shared %v without a node_modules", got)
	}
	if err := os.MkdirAll(filepath.Join(repo, "node_modules", "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := s.shareVolumes(ws); len(got) != 0 {
		t.Fatalf("mounted %v before preparing it", got)
	}
	if err := s.PrepareShares(ws); err != nil {
		t.Fatal(err)
	}
	vols := s.shareVolumes(ws)
	if len(vols) != 1 || vols[0].Target != "/workspace/node_modules" || vols[0].Overlay == nil ||
		!strings.HasPrefix(vols[0].Overlay.Upper, ws.StateDir) || vols[0].Overlay.Lower != filepath.Join(repo, "node_modules") {
		t.Fatalf("share volumes %+v", vols)
	}
	none := New(Config{Repo: repo, Share: []string{}}, nil, nil)
	if got := none.shares(ws); len(got) != 0 {
		t.Errorf("an empty share list shared %v", got)
	}
	other := New(Config{Repo: repo, Share: []string{"vendor", "node_modules"}}, nil, nil)
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

func TestParseUser(t *testing.T) {
	for _, c := range []struct {
		in       string
		uid, gid int
		ok       bool
	}{
		{"1000:1000", 1000, 1000, true},
		{"501:20", 501, 20, true},
		{"1000", 0, 0, false},
		{"agent:agent", 0, 0, false},
		{"-1:5", 0, 0, false},
		{"", 0, 0, false},
	} {
		uid, gid, err := ParseUser(c.in)
		if (err == nil) != c.ok || (c.ok && (uid != c.uid || gid != c.gid)) {
			t.Errorf("ParseUser(%q) = %d, %d, %v", c.in, uid, gid, err)
		}
	}
}

func TestExposesRepo(t *testing.T) {
	repo := t.TempDir()
	for _, c := range []struct {
		dir  string
		want bool
	}{
		{filepath.Join(repo, "node_modules"), false},
		{filepath.Join(repo, "web", "node_modules"), false},
		{repo, true},
		{filepath.Dir(repo), true},
		{filepath.Join(repo, ".git"), true},
		{filepath.Join(repo, ".git", "objects"), true},
		{filepath.Join(filepath.Dir(repo), "other"), false},
	} {
		if got := exposesRepo(c.dir, repo); got != c.want {
			t.Errorf("exposesRepo(%q) = %v, want %v", c.dir, got, c.want)
		}
	}
}

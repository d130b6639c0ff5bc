package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// benchModule is a small Go program whose build compiles a good part of the
// standard library: with an empty GOCACHE every one of those packages is
// compiled, with a warm one they are all cache hits.
var benchModule = map[string]string{
	"go.mod": "module example.com/bench\n\ngo 1.22\n",
	"main.go": `package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"text/template"
)

func main() {
	u, _ := url.Parse("https://example.com/a?b=c")
	b, _ := json.Marshal(map[string]string{"host": u.Host})
	t := template.Must(template.New("x").Parse("{{.}}\n"))
	_ = t.Execute(os.Stdout, string(b))
	fmt.Println("built and ran")
}
`,
}

const benchVerify = "go build -o /tmp/bench . && /tmp/bench"

// BenchmarkVerifyColdVsWarmCache measures the verify step's wall time (fresh
// container, `go build` of benchModule) with fresh cache volumes and again with
// the volumes the first run filled, and reports both and their ratio. The Go
// toolchain comes from this machine's GOROOT, copied into an image layer on
// top of the offline test image. Run with:
//
//	go test -run '^$' -bench VerifyColdVsWarmCache -benchtime 1x ./supervisor/
func BenchmarkVerifyColdVsWarmCache(b *testing.B) {
	b.StopTimer() // only the verify rounds count
	base := testimage.Ensure(b)
	dc := testimage.Docker(b)
	image := goImage(b, base)
	var cold, warm time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		repo := b.TempDir() // a new repository key: fresh, empty cache volumes
		s, r, ws := benchSetup(b, dc, repo, image)
		ctx := context.Background()
		b.StartTimer()
		c := benchRound(b, s, r, ws, 1)
		w := benchRound(b, s, r, ws, 2)
		b.StopTimer()
		cold, warm = cold+c, warm+w
		if n, err := PruneCaches(ctx, dc, repo); err != nil || n != len(s.box().CacheVolumes(sandboxRun(r, ws), CacheVerify)) {
			b.Fatalf("prune caches: %d %v", n, err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(cold.Seconds()/n, "cold-s/op")
	b.ReportMetric(warm.Seconds()/n, "warm-s/op")
	b.ReportMetric(cold.Seconds()/warm.Seconds(), "cold/warm")
	b.Logf("verify wall time (go build, %s): cold cache %s, warm cache %s, ratio %.1fx",
		runtime.Version(), roundDuration(cold/time.Duration(b.N)), roundDuration(warm/time.Duration(b.N)),
		cold.Seconds()/warm.Seconds())
}

func benchRound(b *testing.B, s *Supervisor, r *run, ws *workspace, round int) time.Duration {
	v, err := s.verifyOnce(context.Background(), r, ws, benchVerify, round)
	if err != nil || !v.Passed {
		b.Fatalf("verify round %d: passed %v err %v\n%s", round, v.Passed, err, v.Tail)
	}
	if !strings.Contains(v.Tail, "built and ran") {
		b.Fatalf("verify round %d did not run the program:\n%s", round, v.Tail)
	}
	return v.Duration
}

// benchSetup is a supervisor with caches on, a run whose events go to a stub
// Trakkar, and a workspace holding benchModule.
func benchSetup(b *testing.B, dc *docker.Client, repo, image string) (*Supervisor, *run, *workspace) {
	b.Helper()
	g, err := hostgit.New(hostgit.Options{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{
		Repo: repo, Image: image, Publish: PublishLocal, ContainerUser: "1000:1000",
		DependencyCaches: true, Share: []string{}, VerifyTimeout: 10 * time.Minute, StopGrace: time.Second,
		Runner:    RunnerInfo{ID: "rnr_bench"},
		Resources: docker.Resources{MemoryBytes: 2 << 30, NanoCPUs: 2e9, PidsLimit: 512},
	}, Deps{API: stubAPI{}, Runtime: dc, Git: g})
	if err != nil {
		b.Fatal(err)
	}
	if os.Geteuid() != 0 {
		s.cfg.ContainerUser = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	state := filepath.Join(repo, ".trakkar-worktrees", ".state", "bench-1")
	ws := &workspace{key: "bench-1", stateDir: state, inDir: filepath.Join(state, "in"), outDir: filepath.Join(state, "out"),
		agentDir: filepath.Join(state, "agent"), wt: hostgit.Worktree{Path: filepath.Join(repo, "src")}}
	for _, d := range []string{ws.inDir, ws.outDir, ws.agentDir, ws.wt.Path} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for name, body := range benchModule {
		if err := os.WriteFile(filepath.Join(ws.wt.Path, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	claim := trakkar.Claim{Run: trakkar.Run{ID: "run_bench", Attempt: 1}, Task: trakkar.Task{ID: "tsk_bench", Key: "BENCH-1"}}
	r := &run{runReporter: s.reporter(claim.Task), claim: claim, log: zap.NewNop(), stopReq: make(chan struct{}), lost: make(chan struct{}),
		ship: trakkar.NewShipper(stubAPI{}, claim.Run.ID, trakkar.ShipperOptions{Logger: zap.NewNop()})}
	r.setState(trakkar.StateRunning)
	return s, r, ws
}

// stubAPI accepts every event; the benchmark measures the verify step only.
type stubAPI struct{}

func (stubAPI) Me(context.Context) (trakkar.Agent, error) { return trakkar.Agent{}, nil }
func (stubAPI) Queued(context.Context, time.Duration, int) ([]trakkar.Run, error) {
	return nil, nil
}
func (stubAPI) Claim(context.Context, string, trakkar.Runner) (trakkar.Claim, error) {
	return trakkar.Claim{}, nil
}
func (stubAPI) Heartbeat(context.Context, string, string) (trakkar.HeartbeatReply, error) {
	return trakkar.HeartbeatReply{}, nil
}
func (stubAPI) PostEvents(_ context.Context, _ string, evs []trakkar.Event) (int64, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	return evs[len(evs)-1].Seq, nil
}
func (stubAPI) Complete(context.Context, string, trakkar.Completion) (trakkar.Run, error) {
	return trakkar.Run{}, nil
}

// goImage is the test image plus this machine's Go toolchain (binaries, tools
// and standard library sources; no tests, testdata or cmd sources), built
// once and reused while GOROOT and the base image are unchanged.
func goImage(b *testing.B, base string) string {
	b.Helper()
	// go test puts its own GOROOT/bin first on PATH, so this is the toolchain
	// that built the benchmark.
	env, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(env))
	baseID, err := exec.Command("docker", "image", "inspect", "-f", "{{.Id}}", base).Output()
	if err != nil {
		b.Fatalf("inspect %s: %v", base, err)
	}
	version, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		b.Fatalf("read GOROOT: %v", err)
	}
	dockerfile := "FROM " + strings.TrimSpace(string(baseID)) + "\nCOPY go/ /usr/local/go/\n" +
		"ENV PATH=/usr/local/go/bin:/usr/local/bin:/bin GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0\n"
	sum := sha256.Sum256([]byte(dockerfile + string(version)))
	ref := "trakkar-agent/worker-test-go:" + hex.EncodeToString(sum[:8])
	if exec.Command("docker", "image", "inspect", ref).Run() == nil {
		return ref
	}
	ctx := b.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := copyGoroot(goroot, filepath.Join(ctx, "go")); err != nil {
		b.Fatalf("copy GOROOT: %v", err)
	}
	var out bytes.Buffer
	cmd := exec.Command("docker", "build", "-q", "-t", ref, ctx)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("docker build: %v\n%s", err, out.String())
	}
	return ref
}

// copyGoroot copies what `go build` needs; files are hard-linked when possible.
func copyGoroot(src, dst string) error {
	keep := func(rel string, d fs.DirEntry) bool {
		top := strings.SplitN(rel, string(filepath.Separator), 2)[0]
		switch {
		case rel == ".":
			return true
		case top != "bin" && top != "pkg" && top != "src" && rel != "go.env" && rel != "VERSION":
			return false
		case rel == filepath.Join("src", "cmd") || d.Name() == "testdata":
			return false
		}
		return d.IsDir() || !strings.HasSuffix(rel, "_test.go")
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if !keep(rel, d) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		out := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(out, fi.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		}
		if os.Link(p, out) == nil {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, fi.Mode().Perm())
	})
}

// Command bench measures trakkar-agent as a user sees it and prints one
// table: each figure as min / median / max over -repeats, next to its
// baseline measured in the same run and the target the issue sets.
//
//	go run ./internal/bench [-repeats 3] [-files 100000] [-only burst,flood] [-keep]
//
// It builds what it needs: the offline worker test image, the trakkar-agent
// binary (driven as a separate process, so RSS and CPU are its own), a
// stand-in Trakkar per scenario that records when each claim, event and
// completion arrived, a fake GitHub, and generated repositories. Everything
// it creates is named after a random id of this run and removed at the end.
//
// It is a plain main package rather than a `bench` build tag so that go vet,
// gofmt and the compile check of CI always see it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/testimage"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// groups in the order they run; -only matches their names.
var groups = []string{"delegation", "small-task phases", "large repo", "20 concurrent", "flood", "burst", "verify"}

func run(args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repeats := fs.Int("repeats", 3, "measurements of each figure")
	files := fs.Int("files", 100000, "files in the large repository")
	only := fs.String("only", "", "comma-separated substrings: run only the row groups they match ("+strings.Join(groups, ", ")+")")
	keep := fs.Bool("keep", false, "keep the run's folder (repositories, runner logs) instead of removing it")
	concurrency := fs.Int("tasks", 20, "tasks of the concurrent and burst rows")
	lines := fs.Int("lines", 100000, "lines of the output flood")
	maxStarting := fs.Int("max-starting", 0, "the runner's --max-starting in the burst row (0: its default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *repeats < 1 || *files < 1 || *concurrency < 1 || *lines < 1 {
		return errors.New("-repeats, -files, -tasks and -lines must be positive")
	}
	if *maxStarting < 0 {
		return fmt.Errorf("-max-starting must not be negative (got %d)", *maxStarting)
	}
	want := func(g string) bool {
		if *only == "" {
			return true
		}
		for _, s := range strings.Split(*only, ",") {
			if s = strings.TrimSpace(s); s != "" && strings.Contains(g, s) {
				return true
			}
		}
		return false
	}
	selected := 0
	for _, g := range groups {
		if want(g) {
			selected++
		}
	}
	if selected == 0 {
		return fmt.Errorf("-only %q matches none of: %s", *only, strings.Join(groups, ", "))
	}

	dir, err := os.MkdirTemp("", "trakkar-bench-")
	if err != nil {
		return fmt.Errorf("make the run folder: %w", err)
	}
	// Searchable like a repository's usual parent folders, so the container's
	// user can check the worktrees out itself. A private folder (MkdirTemp's
	// 0700) would measure the fallback instead: root checks out, then chowns.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("open the run folder: %w", err)
	}
	h := &harness{dir: dir}
	b := &bench{h: h, runID: testimage.RunID(), progress: stderr, keepLogs: *keep}
	defer func() {
		b.sweep()
		h.cleanup()
		if *keep {
			fmt.Fprintln(stderr, "bench: kept", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintln(stderr, "bench: remove the run folder:", rerr)
		}
	}()
	start := time.Now()
	t := &table{}
	// Interrupted: print what was measured, stop the runners and remove what the run made before
	// leaving, or its containers, volumes and folder would stay behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; !ok {
			return
		}
		fmt.Fprintln(stderr, "bench: interrupted; cleaning up")
		fmt.Fprintf(stdout, "trakkar-agent bench: INTERRUPTED after %s; the rows measured so far:\n\n", time.Since(start).Round(time.Second))
		t.print(stdout)
		b.sweep()
		h.cleanup()
		if !*keep {
			_ = os.RemoveAll(dir)
		}
		os.Exit(130)
	}()
	// The test helpers report failures by panicking through the harness.
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(errFatal)
			if !ok {
				panic(r)
			}
			err = errors.New(f.msg)
		}
	}()

	b.logf("building the worker image and trakkar-agent")
	if b.dc, err = docker.New(context.Background(), zap.NewNop()); err != nil {
		return fmt.Errorf("docker is required: %w", err)
	}
	h.Cleanup(func() { _ = b.dc.Close() })
	if b.image, err = b.buildImage(); err != nil {
		return err
	}
	b.bin = filepath.Join(dir, "trakkar-agent")
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	build := exec.Command("go", "build", "-o", b.bin, "./cmd/trakkar-agent")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build trakkar-agent: %w\n%s", err, out)
	}
	b.gh = fakegithub.New(h, ghToken)

	steps := []struct {
		groups []string
		run    func() error
	}{
		{[]string{"delegation", "small-task phases"}, func() error {
			return b.smallTasks(t, *repeats, want("delegation"), want("small-task phases"))
		}},
		{[]string{"large repo"}, func() error { return b.largeRepo(t, *repeats, *files) }},
		{[]string{"20 concurrent"}, func() error { return b.concurrent(t, *repeats, *concurrency) }},
		{[]string{"flood"}, func() error { return b.flood(t, *repeats, *lines) }},
		{[]string{"burst"}, func() error { return b.burst(t, *repeats, *concurrency, *maxStarting) }},
		{[]string{"verify"}, func() error { return b.verify(t, *repeats) }},
	}
	// A scenario that fails is reported and the others still run: a long
	// bench should not lose every figure to one of them.
	var failed []error
	for _, s := range steps {
		if !slices.ContainsFunc(s.groups, want) {
			continue
		}
		if err := s.run(); err != nil {
			err = fmt.Errorf("%s: %w", strings.Join(s.groups, ", "), err)
			b.logf("%v", err)
			failed = append(failed, err)
			first, _, _ := strings.Cut(err.Error(), "\n")
			t.add(row{name: strings.Join(s.groups, ", ") + ": FAILED", note: first})
		}
	}
	fmt.Fprintf(stdout, "trakkar-agent bench: -repeats %d -files %d -tasks %d -lines %d, %s, took %s\n\n",
		*repeats, *files, *concurrency, *lines, time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(time.Second))
	t.print(stdout)
	return errors.Join(failed...)
}

// moduleRoot walks up from the working directory to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: run the bench inside the trakkar-agent checkout")
		}
		dir = parent
	}
}

// row is one figure of the table.
type row struct {
	group, name, unit string
	vals              []float64
	base              []float64
	baseName          string
	target            string
	ok                *bool  // nil: no target
	note              string // in place of the figures: why there are none
}

func okIf(b bool) *bool { return &b }

// table is safe for concurrent use: an interrupt prints it while a
// scenario may still add rows.
type table struct {
	mu   sync.Mutex
	rows []row
}

func (t *table) add(r row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

func (t *table) print(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cells := [][]string{{"figure", "min / median / max", "baseline (same run)", "target"}}
	for _, r := range t.rows {
		base := ""
		if len(r.base) > 0 {
			base = stats(r.base, r.unit) + " " + r.baseName
		}
		target := r.target
		if r.ok != nil {
			mark := "✖"
			if *r.ok {
				mark = "✔"
			}
			target = mark + " " + target
		}
		figure := stats(r.vals, r.unit)
		if r.note != "" {
			figure = r.note
		}
		cells = append(cells, []string{r.name, figure, base, target})
	}
	width := make([]int, 4)
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	for n, c := range cells {
		var b strings.Builder
		b.WriteString("|")
		for i, s := range c {
			b.WriteString(" " + s + strings.Repeat(" ", width[i]-len([]rune(s))) + " |")
		}
		fmt.Fprintln(w, b.String())
		if n == 0 {
			b.Reset()
			b.WriteString("|")
			for i := range c {
				b.WriteString(strings.Repeat("-", width[i]+2) + "|")
			}
			fmt.Fprintln(w, b.String())
		}
	}
}

func stats(v []float64, unit string) string {
	if len(v) == 0 {
		return "n/a"
	}
	f := func(x float64) string {
		switch {
		case math.Abs(x) >= 100:
			return fmt.Sprintf("%.0f", x)
		case math.Abs(x) >= 10:
			return fmt.Sprintf("%.1f", x)
		default:
			return fmt.Sprintf("%.2f", x)
		}
	}
	if len(v) == 1 {
		return f(v[0]) + " " + unit
	}
	return fmt.Sprintf("%s / %s / %s %s", f(slices.Min(v)), f(median(v)), f(slices.Max(v)), unit)
}

func median(v []float64) float64 { return pct(v, 50) }

// pct is the p-th percentile of v (nearest rank); NaN when v is empty.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if p == 50 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func slicesMax(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Max(v)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/supervisor"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the runs this runner is working or keeping: task, phase, elapsed, container CPU and memory, last event, workspace",
		Description: "Reads the run records under .trakkar-worktrees/ and asks the Docker engine about each\n" +
			"run's container, so it works while the runner runs and after it stopped or died. Runs\n" +
			"that are done show only while their workspace is kept.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Usage: "the repository (default: the one containing the working directory)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
			&cli.BoolFlag{Name: "all", Usage: "show every runner's runs in this repository, not only this runner's"},
		},
		Action: statusAction,
	}
}

// statusRun is one run as status prints it.
type statusRun struct {
	supervisor.RunInfo
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	Container      *statusContainer `json:"container,omitempty"`
}

type statusContainer struct {
	ID          string  `json:"id"`
	State       string  `json:"state,omitempty"` // "" when Error says why it is unknown
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryBytes uint64  `json:"memory_bytes"`
	MemoryLimit uint64  `json:"memory_limit_bytes"`
	Error       string  `json:"error,omitempty"`
}

type statusReport struct {
	RunnerID string `json:"runner_id"`
	// Supervisor is whether a runner process holds this runner's lock now.
	Supervisor struct {
		Running bool `json:"running"`
		PID     int  `json:"pid,omitempty"`
	} `json:"supervisor"`
	Runs []statusRun `json:"runs"`
}

// usageReader is what status needs from the engine.
type usageReader interface {
	Usage(ctx context.Context, id string) (docker.Usage, error)
}

func statusAction(c *cli.Context) error {
	if c.Args().Present() {
		return badInput("unexpected argument %q (see trakkar-agent status --help)", c.Args().First())
	}
	ctx := context.Background()
	dir := c.String("repo")
	var err error
	if dir == "" {
		if dir, err = os.Getwd(); err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
	}
	if abs, err := filepath.Abs(dir); err != nil || supervisor.InsideWorktrees(abs) {
		return badInput("%s is inside a task worktree folder (or unusable); run status in the repository itself", dir)
	}
	g, err := hostgit.New(hostgit.Options{StateDir: gitStateDir(), Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("prepare host git: %w", err)
	}
	repo, err := g.RepoRoot(ctx, dir)
	if err != nil {
		return badInput("%s is not inside a git repository: run status in the repository, or pass --repo", dir)
	}
	host, _ := os.Hostname()
	rep := statusReport{RunnerID: runnerID(host, repo)}
	// The same read-only flock test as doctor's: a lock is held only while
	// its runner lives, whatever pid the file still names.
	if held, err := lockHolder(supervisor.WorktreeRoot(repo), "", rep.RunnerID, false); err == nil && held != "" {
		rep.Supervisor.Running = true
		rep.Supervisor.PID, _ = strconv.Atoi(strings.TrimPrefix(held, "pid "))
	}
	filter := rep.RunnerID
	if c.Bool("all") {
		filter = ""
	}
	runs, err := supervisor.ReadRuns(repo, filter)
	if err != nil {
		return err
	}
	// The engine is optional: without it the records still say a lot.
	var engine usageReader
	var engineErr error
	if needsEngine(runs) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		dc, err := docker.New(dctx, zap.NewNop())
		cancel()
		if err != nil {
			engineErr = err
		} else {
			defer dc.Close()
			engine = dc
		}
	}
	rep.Runs = describeRuns(ctx, runs, engine, engineErr, time.Now())
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printStatus(os.Stdout, rep, time.Now())
	return nil
}

func needsEngine(runs []supervisor.RunInfo) bool {
	for _, r := range runs {
		if r.ContainerID != "" {
			return true
		}
	}
	return false
}

// describeRuns adds each run's elapsed time and its container's state and
// usage, asking the engine about all containers at once (a CPU sample takes
// the engine about a second).
func describeRuns(ctx context.Context, runs []supervisor.RunInfo, engine usageReader, engineErr error, now time.Time) []statusRun {
	out := make([]statusRun, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		out[i] = statusRun{RunInfo: r, ElapsedSeconds: r.Elapsed(now).Round(time.Second).Seconds()}
		if r.ContainerID == "" {
			continue
		}
		sc := &statusContainer{ID: r.ContainerID}
		out[i].Container = sc
		if engine == nil {
			sc.Error = "docker engine not reachable"
			if engineErr != nil {
				sc.Error = engineErr.Error()
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			uctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			u, err := engine.Usage(uctx, sc.ID)
			switch {
			case docker.IsNotFound(err):
				sc.State = "removed"
			case err != nil:
				sc.Error = err.Error()
			default:
				sc.State, sc.CPUPercent, sc.MemoryBytes, sc.MemoryLimit = u.State, u.CPUPercent, u.MemoryBytes, u.MemoryLimit
			}
		}()
	}
	wg.Wait()
	return out
}

func printStatus(w io.Writer, rep statusReport, now time.Time) {
	who := "not running"
	if rep.Supervisor.Running {
		who = "running, pid " + strconv.Itoa(rep.Supervisor.PID)
	}
	fmt.Fprintf(w, "runner %s (%s)\n", rep.RunnerID, who)
	if len(rep.Runs) == 0 {
		fmt.Fprintln(w, "no runs working or kept")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tPHASE\tELAPSED\tCONTAINER\tCPU\tMEMORY\tLAST EVENT\tWORKSPACE")
	for _, r := range rep.Runs {
		phase := r.Phase
		if r.Outcome != "" {
			phase += " (" + r.Outcome + ")"
		}
		if r.Kept {
			phase += ", kept"
		}
		ctr, cpu, mem := "-", "-", "-"
		if c := r.Container; c != nil {
			ctr = shortContainerID(c.ID) + " " + c.State
			if c.Error != "" {
				ctr = shortContainerID(c.ID) + " unknown"
			}
			if c.State == "running" {
				cpu = fmt.Sprintf("%.1f%%", c.CPUPercent)
				mem = mib(c.MemoryBytes)
				if c.MemoryLimit > 0 {
					mem += " / " + mib(c.MemoryLimit)
				}
			}
		}
		last := "-"
		if e := r.LastEvent; e != nil {
			last = fmt.Sprintf("%s ago %s: %s", now.Sub(e.At).Round(time.Second), e.Type, clip(e.Text, 60))
		}
		ws := r.Workspace
		if ws == "" {
			ws = "-"
		}
		elapsed := "-"
		if r.ElapsedSeconds > 0 {
			elapsed = (time.Duration(r.ElapsedSeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.TaskKey, phase, elapsed, ctr, cpu, mem, last, ws)
	}
	_ = tw.Flush()
	for _, r := range rep.Runs {
		if c := r.Container; c != nil && c.Error != "" {
			fmt.Fprintf(w, "%s: container %s: %s\n", r.TaskKey, shortContainerID(c.ID), c.Error)
		}
		if r.Reason != "" {
			fmt.Fprintf(w, "%s: %s\n", r.TaskKey, clip(r.Reason, 200))
		}
	}
}

func mib(b uint64) string { return strconv.FormatUint(b>>20, 10) + " MiB" }

func shortContainerID(id string) string { return id[:min(len(id), 12)] }

// clip keeps a table cell on one line and short.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

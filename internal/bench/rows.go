package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

const smallTask = "Write a file.\nfake:write=bench.txt=hello from the bench"

// task is one delegation.
type task struct {
	id, run, key string
	at           time.Time // delegated
}

func (b *bench) delegate(ti *trakkarStandIn, desc string) (task, error) {
	b.repos++
	key := fmt.Sprintf("B%s-%d", b.runID, b.repos)
	at := time.Now()
	t, r, err := ti.s.CreateTask(standin.NewTask{Key: key, Title: "bench " + key, Description: desc})
	if err != nil {
		return task{}, fmt.Errorf("delegate %s: %w", key, err)
	}
	return task{id: t.ID, run: r.ID, key: key, at: at}, nil
}

// waitComplete waits for run's completion to reach Trakkar.
func (b *bench) waitComplete(ti *trakkarStandIn, p *runnerProc, run string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if t, ok := ti.rec.completed(run); ok {
			if rv, _ := ti.s.Run(run); rv.Completion != nil && rv.Completion.Outcome != trakkar.OutcomeSucceeded {
				return t, fmt.Errorf("run %s ended %s: %v\n%s", run, rv.Completion.Outcome, deref(rv.Completion.Error), tail(p.output(), 15))
			}
			return t, nil
		}
		select {
		case <-p.done:
			return time.Time{}, fmt.Errorf("trakkar-agent exited:\n%s", tail(p.output(), 20))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("run %s not complete after %s:\n%s", run, timeout, tail(p.output(), 20))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// status is the event of run whose text starts with prefix, as stored.
func status(ti *trakkarStandIn, run, prefix string) (arrival, error) {
	a, ok := ti.rec.firstEvent(run, trakkar.EventStatus, prefix)
	if !ok {
		return a, fmt.Errorf("run %s: no %q event", run, prefix)
	}
	return a, nil
}

func secs(d time.Duration) float64 { return d.Seconds() }

// smallTasks runs repeats small tasks one after another on a runner with the
// default polling, and as many on one with --poll-wait 0 --interval 15 when
// the delegation rows are wanted.
func (b *bench) smallTasks(t *table, repeats int, delegation, phases bool) error {
	ti := b.newTrakkar(trakkar.Agent{})
	repo, err := b.newRepo(0)
	if err != nil {
		return err
	}
	p, err := b.startRunner(ti, repo)
	if err != nil {
		return err
	}
	var visible, firstSeen, statusLag, claim, ws, ctr, agentStart, agentRun, publish, total, bare []float64
	for i := 0; i < repeats; i++ {
		b.logf("small task %d/%d", i+1, repeats)
		tk, err := b.delegate(ti, smallTask)
		if err != nil {
			return err
		}
		done, err := b.waitComplete(ti, p, tk.run, 5*time.Minute)
		if err != nil {
			return err
		}
		claimed, _ := ti.rec.claimed(tk.run)
		ready, err1 := status(ti, tk.run, "Workspace ready")
		started, err2 := status(ti, tk.run, "Container started")
		agent, err3 := status(ti, tk.run, "Agent started")
		exited, ok := p.logTime("container exited", tk.run)
		if err := firstErr(err1, err2, err3); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("run %s: no \"container exited\" log line", tk.run)
		}
		visible = append(visible, secs(agent.at.Sub(tk.at)))
		first, err := status(ti, tk.run, "Claimed")
		if err != nil {
			return err
		}
		firstSeen = append(firstSeen, secs(first.at.Sub(tk.at)))
		for _, a := range []arrival{ready, started, agent} {
			statusLag = append(statusLag, secs(a.at.Sub(a.ev.At)))
		}
		claim = append(claim, secs(claimed.Sub(tk.at)))
		ws = append(ws, secs(ready.ev.At.Sub(claimed)))
		ctr = append(ctr, secs(started.ev.At.Sub(ready.ev.At)))
		agentStart = append(agentStart, secs(agent.ev.At.Sub(started.ev.At)))
		agentRun = append(agentRun, secs(exited.Sub(agent.ev.At)))
		publish = append(publish, secs(done.Sub(exited)))
		total = append(total, secs(done.Sub(tk.at)))
		d, err := b.bareDockerRun()
		if err != nil {
			return err
		}
		bare = append(bare, d)
	}
	p.stop()

	var base, baseFirst []float64
	if delegation {
		bti := b.newTrakkar(trakkar.Agent{})
		brepo, err := b.newRepo(0)
		if err != nil {
			return err
		}
		bp, err := b.startRunner(bti, brepo, "--poll-wait", "0", "--interval", "15")
		if err != nil {
			return err
		}
		for i := 0; i < repeats; i++ {
			// Delegate at a random point of the 15 s poll cycle.
			wait := time.Duration(rand.Int64N(int64(15 * time.Second)))
			b.logf("polling baseline %d/%d (delegating in %s)", i+1, repeats, wait.Round(time.Millisecond))
			time.Sleep(wait)
			tk, err := b.delegate(bti, smallTask)
			if err != nil {
				return err
			}
			if _, err := b.waitComplete(bti, bp, tk.run, 5*time.Minute); err != nil {
				return err
			}
			agent, err := status(bti, tk.run, "Agent started")
			if err != nil {
				return err
			}
			base = append(base, secs(agent.at.Sub(tk.at)))
			first, err := status(bti, tk.run, "Claimed")
			if err != nil {
				return err
			}
			baseFirst = append(baseFirst, secs(first.at.Sub(tk.at)))
		}
		bp.stop()
		t.add(row{group: "delegation", name: "delegation → first event visible", unit: "s", vals: firstSeen,
			base: baseFirst, baseName: "--poll-wait 0 --interval 15"})
		t.add(row{group: "delegation", name: `delegation → "Agent started" visible (median = p50)`, unit: "s", vals: visible,
			base: base, baseName: "--poll-wait 0 --interval 15", target: "p50 ≤ 0.8 s", ok: okIf(median(visible) <= 0.8)})
		t.add(row{group: "delegation", name: `delegation → "Agent started" visible, p95`, unit: "s", vals: []float64{pct(visible, 95)},
			base: []float64{pct(base, 95)}, baseName: "--poll-wait 0 --interval 15"})
	}
	if phases {
		g := "small-task phases"
		t.add(row{group: g, name: "small task: delegation → claim", unit: "s", vals: claim})
		t.add(row{group: g, name: "small task: claim → workspace ready", unit: "s", vals: ws})
		t.add(row{group: g, name: "small task: workspace ready → container started", unit: "s", vals: ctr,
			base: bare, baseName: "docker run --rm of the image"})
		t.add(row{group: g, name: "small task: container started → agent started", unit: "s", vals: agentStart})
		t.add(row{group: g, name: "small task: agent started → container exited", unit: "s", vals: agentRun})
		t.add(row{group: g, name: "small task: container exited → complete", unit: "s", vals: publish})
		t.add(row{group: g, name: "small task: delegation → complete", unit: "s", vals: total})
		t.add(row{group: g, name: "small task: status event happened → visible in Trakkar", unit: "s", vals: statusLag})
	}
	return nil
}

// bareBurst creates and starts n containers of the worker image at once
// through the engine's API, with nothing else around them (no mounts, no
// network, no git): the engine's own floor under a burst. It returns when the
// last one started, counted from the first request.
func (b *bench) bareBurst(n int) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.repos++
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := b.dc.Create(ctx, docker.Spec{Name: fmt.Sprintf("bench-%s-burst-%d-%d", b.runID, b.repos, j),
				Image: b.image, Entrypoint: []string{"/bin/sleep"}, Cmd: []string{"30"}, User: "1000:1000", Network: "none"})
			ids[j], errs[j] = id, err
			if err == nil {
				_, errs[j] = b.dc.Start(ctx, id)
			}
		}()
	}
	wg.Wait()
	took := secs(time.Since(start))
	for _, id := range ids {
		if id != "" {
			if err := b.dc.Remove(context.Background(), id); err != nil {
				return 0, fmt.Errorf("remove a bare burst container: %w", err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("bare burst: %w", err)
	}
	return took, nil
}

// bareDockerRun times `docker run --rm` of the worker image running true.
func (b *bench) bareDockerRun() (float64, error) {
	b.repos++
	name := fmt.Sprintf("bench-%s-bare-%d", b.runID, b.repos)
	start := time.Now()
	out, err := exec.Command("docker", "run", "--rm", "--name", name, "--entrypoint", "/bin/true", b.image).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("docker run --rm: %w: %s", err, out)
	}
	return secs(time.Since(start)), nil
}

// largeRepo: claim → container started and agent exit → complete on a
// repository of files files, against a raw `git worktree add` of its commit.
func (b *bench) largeRepo(t *table, repeats, files int) error {
	b.logf("generating a repository of %d files", files)
	repo, err := b.newRepo(files)
	if err != nil {
		return err
	}
	ti := b.newTrakkar(trakkar.Agent{})
	p, err := b.startRunner(ti, repo)
	if err != nil {
		return err
	}
	var started, complete, raw []float64
	for i := 0; i < repeats; i++ {
		// Every measured checkout starts on a quiet disk (the last one's files
		// written out and deleted), and the two take turns going first, so
		// neither pays for the other's writeback.
		rawAdd := func() error {
			if err := settle(repo); err != nil {
				return err
			}
			b.logf("%d-file repository %d/%d: raw git worktree add", files, i+1, repeats)
			dir := filepath.Join(filepath.Dir(repo), fmt.Sprintf("raw-%d", i))
			t0 := time.Now()
			if out, err := exec.Command("git", "-C", repo, "worktree", "add", "-q", "--detach", dir, "origin/main").CombinedOutput(); err != nil {
				return fmt.Errorf("git worktree add: %w: %s", err, out)
			}
			raw = append(raw, secs(time.Since(t0)))
			if out, err := exec.Command("git", "-C", repo, "worktree", "remove", "--force", dir).CombinedOutput(); err != nil {
				return fmt.Errorf("git worktree remove: %w: %s", err, out)
			}
			return nil
		}
		if i%2 == 0 {
			if err := rawAdd(); err != nil {
				return err
			}
		}
		if err := settle(repo); err != nil {
			return err
		}
		b.logf("%d-file repository %d/%d: task", files, i+1, repeats)
		tk, err := b.delegate(ti, smallTask)
		if err != nil {
			return err
		}
		done, err := b.waitComplete(ti, p, tk.run, 15*time.Minute)
		if err != nil {
			return err
		}
		if i%2 == 1 {
			if err := rawAdd(); err != nil {
				return err
			}
		}
		claimed, _ := ti.rec.claimed(tk.run)
		st, err := status(ti, tk.run, "Container started")
		if err != nil {
			return err
		}
		exited, ok := p.logTime("container exited", tk.run)
		if !ok {
			return fmt.Errorf("run %s: no \"container exited\" log line", tk.run)
		}
		started = append(started, secs(st.ev.At.Sub(claimed)))
		complete = append(complete, secs(done.Sub(exited)))
	}
	p.stop()
	g := "large repo"
	t.add(row{group: g, name: fmt.Sprintf("%d-file repo: claim → container started", files), unit: "s", vals: started,
		base: raw, baseName: "git worktree add", target: "≤ 1.3 × baseline", ok: okIf(median(started) <= 1.3*median(raw))})
	t.add(row{group: g, name: fmt.Sprintf("%d-file repo: agent exit → complete", files), unit: "s", vals: complete,
		target: "≤ 5 s", ok: okIf(median(complete) <= 5)})
	return nil
}

// settle waits until the runner has deleted the worktrees it trashed, then
// flushes the file system's dirty pages.
func settle(repo string) error {
	trash := filepath.Join(repo, ".trakkar-worktrees", ".trash")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ents, err := os.ReadDir(trash)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read the trash folder: %w", err)
		}
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the runner's trash %s was not emptied in 5 minutes", trash)
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Sync()
	return nil
}

// sampler records a process's CPU time every 100 ms.
type sampler struct {
	mu   sync.Mutex
	at   []time.Time
	cpu  []time.Duration
	stop chan struct{}
	done chan struct{}
}

func sample(p *runnerProc) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			if c, err := p.cpuTime(); err == nil {
				s.mu.Lock()
				s.at, s.cpu = append(s.at, time.Now()), append(s.cpu, c)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

// used is the CPU time between the samples nearest from and to.
func (s *sampler) used(from, to time.Time) time.Duration {
	close(s.stop)
	<-s.done
	idx := func(t time.Time) int {
		i := sort.Search(len(s.at), func(i int) bool { return !s.at[i].Before(t) })
		return min(i, len(s.at)-1)
	}
	if len(s.at) == 0 {
		return 0
	}
	return s.cpu[idx(to)] - s.cpu[idx(from)]
}

// concurrent runs n chatty tasks at once on a fresh runner per repeat.
func (b *bench) concurrent(t *table, repeats, n int) error {
	var rss, cpu, reqs, p50, p95 []float64
	for i := 0; i < repeats; i++ {
		b.logf("%d concurrent tasks %d/%d", n, i+1, repeats)
		ti := b.newTrakkar(trakkar.Agent{})
		repo, err := b.newRepo(0)
		if err != nil {
			return err
		}
		p, err := b.startRunner(ti, repo, "--max-concurrency", fmt.Sprint(n))
		if err != nil {
			return err
		}
		smp := sample(p)
		var tasks []task
		for j := 0; j < n; j++ {
			tk, err := b.delegate(ti, "Chat for a while.\nfake:scenario=chatty\nfake:count=150\nfake:delay=100ms\nfake:write=bench.txt=hi")
			if err != nil {
				return err
			}
			tasks = append(tasks, tk)
		}
		runs := map[string]bool{}
		for _, tk := range tasks {
			runs[tk.run] = true
			if _, err := b.waitComplete(ti, p, tk.run, 10*time.Minute); err != nil {
				return err
			}
		}
		peak, err := p.peakRSS()
		if err != nil {
			return err
		}
		// Each task talks from its agent's start to its last line; the
		// runner's CPU and requests over the whole span are shared by the
		// task-seconds within it, so tasks need not overlap exactly.
		var from, to time.Time
		var taskSecs float64
		var lat []float64
		for _, tk := range tasks {
			a, err := status(ti, tk.run, "Agent started")
			if err != nil {
				return err
			}
			var last time.Time
			for _, ar := range ti.rec.arrivals(tk.run) {
				if ar.ev.Type != trakkar.EventMessage || !strings.Contains(ar.ev.Text, "Progress note") {
					continue
				}
				lat = append(lat, secs(ar.at.Sub(ar.ev.At)))
				if ar.at.After(last) {
					last = ar.at
				}
			}
			if last.IsZero() {
				return fmt.Errorf("run %s: no progress notes reached Trakkar", tk.run)
			}
			taskSecs += secs(last.Sub(a.at))
			if from.IsZero() || a.at.Before(from) {
				from = a.at
			}
			if last.After(to) {
				to = last
			}
		}
		if taskSecs <= 0 {
			return fmt.Errorf("the agents never talked (%s of task time)", time.Duration(taskSecs*float64(time.Second)))
		}
		used := smp.used(from, to)
		p.stop()
		rss = append(rss, float64(peak)/(1<<20))
		cpu = append(cpu, 100*used.Seconds()/taskSecs)
		reqs = append(reqs, float64(ti.rec.eventRequests(runs, from, to))/taskSecs)
		p50 = append(p50, pct(lat, 50))
		p95 = append(p95, pct(lat, 95))
	}
	g := "20 concurrent"
	pre := fmt.Sprintf("%d concurrent tasks: ", n)
	t.add(row{group: g, name: pre + "peak RSS", unit: "MiB", vals: rss})
	t.add(row{group: g, name: pre + "CPU per task", unit: "%", vals: cpu})
	t.add(row{group: g, name: pre + "events requests/s per task", unit: "/s", vals: reqs})
	t.add(row{group: g, name: pre + "line latency p50", unit: "s", vals: p50})
	t.add(row{group: g, name: pre + "line latency p95", unit: "s", vals: p95})
	return nil
}

// flood: one task printing lines lines as fast as it can.
func (b *bench) flood(t *table, repeats, lines int) error {
	var lps, rps, rss, lostPct []float64
	for i := 0; i < repeats; i++ {
		b.logf("flood of %d lines %d/%d", lines, i+1, repeats)
		ti := b.newTrakkar(trakkar.Agent{})
		repo, err := b.newRepo(0)
		if err != nil {
			return err
		}
		p, err := b.startRunner(ti, repo)
		if err != nil {
			return err
		}
		tk, err := b.delegate(ti, fmt.Sprintf("Flood.\nfake:scenario=chatty\nfake:count=%d\nfake:write=bench.txt=hi", lines))
		if err != nil {
			return err
		}
		if _, err := b.waitComplete(ti, p, tk.run, 20*time.Minute); err != nil {
			return err
		}
		peak, err := p.peakRSS()
		if err != nil {
			return err
		}
		p.stop()
		agent, err := status(ti, tk.run, "Agent started")
		if err != nil {
			return err
		}
		var last time.Time
		n := 0
		for _, ar := range ti.rec.arrivals(tk.run) {
			if c := strings.Count(ar.ev.Text, "Progress note"); c > 0 {
				n += c
				if ar.at.After(last) {
					last = ar.at
				}
			}
		}
		// Lines the container's log rotated away are reported, not delivered.
		lost := 0
		for _, ar := range ti.rec.arrivals(tk.run) {
			if l, ok := ar.ev.Data["lost_lines"].(float64); ok && ar.ev.Type == trakkar.EventError {
				lost += int(l)
			}
		}
		if n+lost < lines {
			return fmt.Errorf("flood: %d of %d lines reached Trakkar and %d were reported lost", n, lines, lost)
		}
		lostPct = append(lostPct, 100*float64(lost)/float64(lines))
		win := last.Sub(agent.at).Seconds()
		lps = append(lps, float64(n)/win)
		rps = append(rps, float64(ti.rec.eventRequests(map[string]bool{tk.run: true}, agent.at, last))/win)
		rss = append(rss, float64(peak)/(1<<20))
	}
	g := "flood"
	pre := fmt.Sprintf("output flood of %d lines: ", lines)
	t.add(row{group: g, name: pre + "lines/s", unit: "/s", vals: lps})
	t.add(row{group: g, name: pre + "events requests/s", unit: "/s", vals: rps})
	t.add(row{group: g, name: pre + "peak RSS", unit: "MiB", vals: rss})
	t.add(row{group: g, name: pre + "lines lost to log rotation (reported)", unit: "%", vals: lostPct})
	return nil
}

// burst delegates n small tasks at once to one runner per repeat: once as
// the runner is configured by default (it claims only while fewer than
// --max-starting runs set up), and once with --max-starting n (every claim
// at once), the baseline.
func (b *bench) burst(t *table, repeats, n, maxStarting int) error {
	var last, worst, bare, allLast, allWorst []float64
	for i := 0; i < repeats; i++ {
		b.logf("burst of %d bare containers %d/%d", n, i+1, repeats)
		s, err := b.bareBurst(n)
		if err != nil {
			return err
		}
		bare = append(bare, s)
		b.logf("burst of %d delegations %d/%d", n, i+1, repeats)
		var opts []string
		if maxStarting > 0 {
			opts = []string{"--max-starting", fmt.Sprint(maxStarting)}
		}
		l, w, err := b.burstOnce(n, opts...)
		if err != nil {
			return err
		}
		last, worst = append(last, l), append(worst, w)
		b.logf("burst of %d delegations, all set up at once %d/%d", n, i+1, repeats)
		l, w, err = b.burstOnce(n, "--max-starting", fmt.Sprint(n))
		if err != nil {
			return err
		}
		allLast, allWorst = append(allLast, l), append(allWorst, w)
	}
	g := "burst"
	t.add(row{group: g, name: fmt.Sprintf("burst of %d: last container started after the first claim", n), unit: "s", vals: last,
		base: bare, baseName: fmt.Sprintf("%d bare create+start at once", n)})
	t.add(row{group: g, name: fmt.Sprintf("burst of %d: max claim → container started", n), unit: "s", vals: worst,
		base: allWorst, baseName: fmt.Sprintf("--max-starting %d", n),
		target: "≤ 3 s", ok: okIf(slicesMax(worst) <= 3)})
	t.add(row{group: g, name: fmt.Sprintf("burst of %d, --max-starting %d: last container started after the first claim", n, n), unit: "s", vals: allLast})
	return nil
}

// burstOnce delegates n small tasks at once to a new runner with extra
// options. It returns, in seconds, when the last container started after the
// first claim and the longest claim → container started.
func (b *bench) burstOnce(n int, extra ...string) (last, worst float64, err error) {
	ti := b.newTrakkar(trakkar.Agent{})
	repo, err := b.newRepo(0)
	if err != nil {
		return 0, 0, err
	}
	p, err := b.startRunner(ti, repo, append([]string{"--max-concurrency", fmt.Sprint(n)}, extra...)...)
	if err != nil {
		return 0, 0, err
	}
	defer p.stop()
	var tasks []task
	for j := 0; j < n; j++ {
		tk, err := b.delegate(ti, smallTask)
		if err != nil {
			return 0, 0, err
		}
		tasks = append(tasks, tk)
	}
	var firstClaim, lastStart time.Time
	for _, tk := range tasks {
		if _, err := b.waitComplete(ti, p, tk.run, 10*time.Minute); err != nil {
			return 0, 0, err
		}
		c, _ := ti.rec.claimed(tk.run)
		st, err := status(ti, tk.run, "Container started")
		if err != nil {
			return 0, 0, err
		}
		if firstClaim.IsZero() || c.Before(firstClaim) {
			firstClaim = c
		}
		if st.ev.At.After(lastStart) {
			lastStart = st.ev.At
		}
		worst = max(worst, secs(st.ev.At.Sub(c)))
	}
	return secs(lastStart.Sub(firstClaim)), worst, nil
}

// verify times the verify step of a task's first run (its dependency caches
// are new) and of a follow-up on the same task (they are warm).
func (b *bench) verify(t *table, repeats int) error {
	cmd := "ls -R /workspace >/dev/null && echo verified"
	ti := b.newTrakkar(trakkar.Agent{VerifyCommand: &cmd})
	repo, err := b.newRepo(0)
	if err != nil {
		return err
	}
	p, err := b.startRunner(ti, repo)
	if err != nil {
		return err
	}
	span := func(run string) (float64, error) {
		s, err1 := status(ti, run, "Verifying")
		e, err2 := status(ti, run, "Verify passed")
		if err := firstErr(err1, err2); err != nil {
			return 0, err
		}
		return secs(e.ev.At.Sub(s.ev.At)), nil
	}
	var cold, warm []float64
	for i := 0; i < repeats; i++ {
		b.logf("verify %d/%d", i+1, repeats)
		tk, err := b.delegate(ti, smallTask)
		if err != nil {
			return err
		}
		if _, err := b.waitComplete(ti, p, tk.run, 5*time.Minute); err != nil {
			return err
		}
		c, err := span(tk.run)
		if err != nil {
			return err
		}
		run, err := ti.s.PostMessage(tk.id, "Once more.\nfake:write=bench.txt=hello again")
		if err != nil {
			return fmt.Errorf("follow-up: %w", err)
		}
		if _, err := b.waitComplete(ti, p, run.ID, 5*time.Minute); err != nil {
			return err
		}
		w, err := span(run.ID)
		if err != nil {
			return err
		}
		cold, warm = append(cold, c), append(warm, w)
	}
	p.stop()
	t.add(row{group: "verify", name: "verify step, warm caches (follow-up run)", unit: "s", vals: warm,
		base: cold, baseName: "cold caches (first run)"})
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

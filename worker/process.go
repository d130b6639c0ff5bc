package worker

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cliSpec is one CLI invocation.
type cliSpec struct {
	Path      string // resolved executable
	Args      []string
	Dir       string
	Env       []string
	Stdin     string
	Stderr    io.Writer     // receives the CLI's stderr as it comes
	KillAfter time.Duration // SIGTERM → SIGKILL grace on stop
}

// drainGrace bounds how long stdout may stay open after the CLI exited (a
// background process it started can hold the pipe) before the group is killed.
const drainGrace = 2 * time.Second

// runCLI starts the CLI in its own process group and feeds every stdout line to
// onLine until stdout is drained. When ctx is cancelled it sends SIGTERM to the
// CLI and SIGKILL to its group after KillAfter. stopped reports that the run was
// ended by ctx.
func runCLI(ctx context.Context, spec cliSpec, onLine func([]byte), onTooLong func(int)) (exit processExit, stopped bool, err error) {
	// Own pipes rather than exec's copying goroutines: Wait then returns when the
	// CLI exits, and the drain below decides how long to wait for inheritors.
	outR, outW, err := os.Pipe()
	if err != nil {
		return processExit{}, false, err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return processExit{}, false, err
	}
	defer errR.Close()
	tail := &tailBuffer{w: spec.Stderr, max: 64 << 10}
	cmd := &exec.Cmd{
		Path:   spec.Path,
		Args:   spec.Args,
		Dir:    spec.Dir,
		Env:    spec.Env,
		Stdin:  strings.NewReader(spec.Stdin),
		Stdout: outW,
		Stderr: errW,
		// Own process group: a stop can reach the tools the agent started.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		// Wait must not hang on a grandchild that holds stdin without reading it.
		WaitDelay: drainGrace,
	}
	err = cmd.Start()
	// The child holds its own copies; EOF comes when every holder has exited.
	outW.Close()
	errW.Close()
	if err != nil {
		return processExit{}, false, err
	}
	pid := cmd.Process.Pid

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		// A read error (e.g. the pipe closed below) just ends the stream.
		_ = readLines(outR, maxLineBytes, onLine, onTooLong)
	}()
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		_, _ = io.Copy(tail, errR)
		if f, ok := spec.Stderr.(interface{ Flush() }); ok {
			f.Flush() // say what a limit dropped at the end
		}
	}()
	waitDone := make(chan struct{})
	go func() {
		defer close(waitDone)
		_ = cmd.Wait() // the outcome is read from ProcessState
	}()

	var (
		ctxDone    = ctx.Done()
		killTimer  <-chan time.Time
		drainTimer <-chan time.Time
		forced     bool
	)
	for waitDone != nil || outDone != nil || errDone != nil {
		select {
		case <-ctxDone:
			ctxDone = nil
			if waitDone != nil {
				stopped = true
				_ = cmd.Process.Signal(syscall.SIGTERM)
				killTimer = time.After(spec.KillAfter)
			}
		case <-killTimer:
			killTimer = nil
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		case <-waitDone:
			waitDone, killTimer = nil, nil
			drainTimer = time.After(drainGrace)
		case <-drainTimer:
			if !forced {
				// Leftover processes of the group still hold the pipes.
				forced = true
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				drainTimer = time.After(drainGrace)
			} else {
				// Something outside the group holds them; stop reading.
				drainTimer = nil
				outR.Close()
				errR.Close()
			}
		case <-outDone:
			outDone = nil
		case <-errDone:
			errDone = nil
		}
	}
	code := cmd.ProcessState.ExitCode()
	return processExit{Code: code, StderrTail: tail.Tail(10, 1000)}, stopped, nil
}

// tailBuffer passes writes through to w and keeps the last max bytes.
type tailBuffer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w != nil {
		_, _ = t.w.Write(p) // a failing log sink must not kill the CLI with EPIPE
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// Tail returns the last lines (at most maxLines non-blank lines, maxChars runes), cleaned.
func (t *tailBuffer) Tail(maxLines, maxChars int) string {
	t.mu.Lock()
	s := stripControl(string(t.buf))
	t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " \t"))
		}
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	out := strings.Join(lines, "\n")
	if r := []rune(out); len(r) > maxChars {
		out = "…" + string(r[len(r)-maxChars+1:])
	}
	return out
}

// lookPathIn finds an executable named file in the directories of pathList.
func lookPathIn(pathList string) func(string) (string, error) {
	return func(file string) (string, error) {
		if strings.Contains(file, "/") {
			return file, executable(file)
		}
		for _, dir := range strings.Split(pathList, ":") {
			if !strings.HasPrefix(dir, "/") {
				continue // relative PATH entries would depend on the cwd
			}
			p := strings.TrimSuffix(dir, "/") + "/" + file
			if executable(p) == nil {
				return p, nil
			}
		}
		return "", exec.ErrNotFound
	}
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

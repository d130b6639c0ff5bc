package worker

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Protect makes this process non-dumpable. The agent runs under the same uid
// as the worker; without this it could open /proc/<worker>/fd/1 and write
// event lines of its own, read /proc/<worker>/environ, or ptrace the worker.
// A non-dumpable process's /proc files need CAP_SYS_PTRACE, which no process
// in the container has. The CLI gets the default back when it is exec'd.
func Protect() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); errno != 0 {
		return fmt.Errorf("make the worker non-dumpable: %w", errno)
	}
	return nil
}

// Init is the container's pid 1. It replaces the engine's init, which would
// hold the container's stdout where the agent could open it: it runs the
// worker (this binary, args) as its child on the same stdout and stderr,
// forwards stop signals to it, reaps every orphan the agent leaves, and exits
// with the worker's status. Call Protect first.
func Init(args []string) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "trakkar-worker: init: "+err.Error())
		return 2
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	child, err := os.StartProcess(exe, args, &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{nil, os.Stdout, os.Stderr}, // the worker reads no stdin
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "trakkar-worker: init: start the worker: "+err.Error())
		return 2
	}
	// A SIGCHLD can be coalesced or dropped when sigs is full; the tick
	// bounds how long a zombie waits then.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case s := <-sigs:
			if s != syscall.SIGCHLD {
				_ = child.Signal(s)
				continue
			}
		case <-tick.C:
		}
		if code, done := reap(child.Pid); done {
			return code
		}
	}
}

// reap collects every exited child; done reports that the worker was one of
// them, with its exit code.
func reap(worker int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != worker {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

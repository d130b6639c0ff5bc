package worker

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// initHelperEnv makes the test binary act as the worker that Init starts.
const initHelperEnv = "TRAKKAR_INIT_TEST_CHILD"

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER (linux/prctl.h), absent from syscall.
const prSetChildSubreaper = 36

func init() {
	switch os.Getenv(initHelperEnv) {
	case "orphans":
		// Orphan three processes that exit while the worker still runs: only
		// an init that reaps every child collects them.
		for i := 0; i < 3; i++ {
			if err := exec.Command("/bin/sh", "-c", "(sleep 0.1) & exit 0").Run(); err != nil {
				os.Exit(90)
			}
		}
		time.Sleep(1500 * time.Millisecond)
		os.Exit(7)
	case "term":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		select {
		case <-sigs:
			os.Exit(143)
		case <-time.After(10 * time.Second):
			os.Exit(91)
		}
	}
}

func TestInitReapsOrphansAndReturnsTheWorkersCode(t *testing.T) {
	// As a subreaper this process gets the orphans, as pid 1 would.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("subreaper: %v", errno)
	}
	t.Setenv(initHelperEnv, "orphans")
	if code := Init([]string{os.Args[0]}); code != 7 {
		t.Fatalf("Init = %d, want the worker's 7", code)
	}
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
		t.Errorf("a child was left unreaped (wait4: pid %d, %v)", pid, err)
	}
}

func TestInitForwardsStopSignal(t *testing.T) {
	t.Setenv(initHelperEnv, "term")
	done := make(chan int, 1)
	go func() { done <- Init([]string{os.Args[0]}) }()
	time.Sleep(500 * time.Millisecond) // the worker is waiting for its signal
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 143 {
			t.Errorf("Init = %d, want 143", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop signal did not reach the worker")
	}
}

package osthreads

import (
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// childEnv makes the test binary run childMain instead of the tests.
const childEnv = "OSTHREADS_TEST_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(childMain(v))
	}
	os.Exit(m.Run())
}

// childMain reserves some threads, then forbids the runtime any thread beyond
// those it has, as a filled pids limit would, and blocks goroutines in system
// calls at once. The runtime aborts ("thread exhaustion") if it needs a new
// thread to do so.
func childMain(spec string) int {
	reserve, blocked, ok := strings.Cut(spec, ",")
	r, err1 := strconv.Atoi(reserve)
	b, err2 := strconv.Atoi(blocked)
	if !ok || err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "bad child spec", spec)
		return 3
	}
	Reserve(r)
	debug.SetMaxThreads(pprof.Lookup("threadcreate").Count())
	var wg sync.WaitGroup
	for range b {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := syscall.Timespec{Nsec: 200e6}
			_ = syscall.Nanosleep(&ts, nil)
		}()
	}
	wg.Wait()
	return 0
}

func TestReservedThreadsServeBlockingCalls(t *testing.T) {
	for _, c := range []struct {
		name             string
		reserve, blocked int
		wantAbort        bool
	}{
		// Without a reserve, blocked calls need new threads: proves the
		// child can fail.
		{"no reserve", 0, 6, true},
		{"reserve covers the calls", 8, 6, false},
		{"reserve equal to the calls", 6, 6, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d", childEnv, c.reserve, c.blocked))
			out, err := cmd.CombinedOutput()
			aborted := strings.Contains(string(out), "thread exhaustion")
			if aborted != c.wantAbort {
				t.Fatalf("aborted %v, want %v (err %v):\n%s", aborted, c.wantAbort, err, out)
			}
			if !c.wantAbort && err != nil {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
		})
	}
}

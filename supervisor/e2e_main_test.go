package supervisor_test

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// e2eSlots is how many end-to-end tests of this package hold an environment
// (newEnv) at once, unless -parallel is given. They mostly wait on containers,
// polls and leases, so more of them than GOMAXPROCS (go test's default, 2 on
// a small CI host) share the CPUs well.
var e2eSlots = 6

// TestMain lifts go test's own cap on parallel tests, which would let them in
// in an order of its choosing, and leaves the end-to-end tests to the gate:
// it lets the long ones (envOpts.long) in first, so the package does not end
// with one of them started last.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if set {
		e2eSlots, _ = strconv.Atoi(flag.Lookup("test.parallel").Value.String())
	} else if err := flag.Set("test.parallel", "1000"); err != nil {
		panic(err)
	}
	gate.free = max(e2eSlots, 1)
	os.Exit(m.Run())
}

// gate admits end-to-end tests to their environments. A test holds one slot
// from its first environment to the end of its last, whatever the number of
// environments it or its subtests make, so nothing waits on a slot its own
// test holds. A long test takes no slot: it is let in at once.
var gate = struct {
	mu      sync.Mutex
	free    int
	alive   map[string]int  // top-level test → its environments alive
	slot    map[string]bool // top-level test → it holds a slot
	waiting []chan struct{}
}{alive: map[string]int{}, slot: map[string]bool{}}

func enterGate(t testing.TB, long bool) {
	top, _, _ := strings.Cut(t.Name(), "/")
	gate.mu.Lock()
	for !long && !gate.slot[top] && gate.free == 0 {
		ch := make(chan struct{})
		gate.waiting = append(gate.waiting, ch)
		gate.mu.Unlock()
		<-ch
		gate.mu.Lock()
	}
	if !long && !gate.slot[top] {
		gate.free--
		gate.slot[top] = true
	}
	gate.alive[top]++
	gate.mu.Unlock()
	t.Cleanup(func() {
		gate.mu.Lock()
		defer gate.mu.Unlock()
		if gate.alive[top]--; gate.alive[top] > 0 {
			return
		}
		delete(gate.alive, top)
		if !gate.slot[top] {
			return
		}
		delete(gate.slot, top)
		gate.free++
		for _, ch := range gate.waiting { // each looks again; one gets the slot
			close(ch)
		}
		gate.waiting = nil
	})
}

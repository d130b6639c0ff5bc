package supervisor_test

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// e2eSlots is how many parallel tests of this package run at once unless
// -parallel is given. The end-to-end tests mostly wait on containers, polls
// and leases, so more of them than GOMAXPROCS (go test's default, 2 on a
// small CI host) share the CPUs well.
var e2eSlots = 6

// TestMain lifts go test's own cap on parallel tests, which lets them in in
// an order of its choosing, and leaves them to the gate (parallel): it lets
// the long ones in first, so the package does not end with one of them
// started last.
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

// parallel is t.Parallel for this package: t waits for one of the e2eSlots
// and holds it to its end. A test whose parallel subtests each need a slot
// calls t.Parallel itself; a subtest of a test holding a slot shares it.
func parallel(t *testing.T) {
	t.Parallel()
	enterGate(t, false)
}

// parallelLong is parallel for a test that takes half a minute or more,
// mostly waiting (outages, kill points, the fleet): it takes no slot and
// starts at once, beside the e2eSlots others.
func parallelLong(t *testing.T) {
	t.Parallel()
	enterGate(t, true)
}

// testGate is the package's slots for parallel tests.
type testGate struct {
	mu      sync.Mutex
	free    int
	held    map[string]bool // tests holding a slot, by name
	waiting []chan struct{}
}

var gate = &testGate{held: map[string]bool{}}

func enterGate(t *testing.T, long bool) {
	gate.mu.Lock()
	if long || gate.ancestorHolds(t.Name()) {
		gate.mu.Unlock()
		return
	}
	if gate.free > 0 {
		gate.free--
		gate.mu.Unlock()
	} else { // wait in line; the slot is handed over
		ch := make(chan struct{})
		gate.waiting = append(gate.waiting, ch)
		gate.mu.Unlock()
		<-ch
	}
	gate.mu.Lock()
	gate.held[t.Name()] = true
	gate.mu.Unlock()
	t.Cleanup(func() {
		gate.mu.Lock()
		defer gate.mu.Unlock()
		delete(gate.held, t.Name())
		if len(gate.waiting) > 0 {
			close(gate.waiting[0])
			gate.waiting = gate.waiting[1:]
			return
		}
		gate.free++
	})
}

// ancestorHolds says whether a test that name is a subtest of holds a slot.
func (g *testGate) ancestorHolds(name string) bool {
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name, '/') {
		name = name[:i]
		if g.held[name] {
			return true
		}
	}
	return false
}

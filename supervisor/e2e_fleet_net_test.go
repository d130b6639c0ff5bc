//go:build linux

package supervisor_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The fleet test's network: one "Trakkar + forge" host and three runner hosts,
// each a network namespace. The server namespace holds a bridge; every runner
// namespace is joined to it by a veth pair. Addresses are the same in every
// world (namespaces do not share routes); only the namespace names, which
// are global, carry the run id.

const (
	fleetServerIP = "10.77.0.1"
	fleetPrefix   = "/24"
)

func fleetHostIP(i int) string { return fmt.Sprintf("10.77.0.%d", 10+i) }

// netns is one named network namespace, removed at the end of the test.
type netns struct{ name string }

func (n netns) path() string { return "/run/netns/" + n.name }

// ipCmd runs ip with args and fails the test on error.
func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addNetns creates a namespace named base (a suffix is added when the name is
// taken, as by a concurrent copy of the suite) and removes it at cleanup.
func addNetns(t testing.TB, base string) netns {
	t.Helper()
	for i := 0; i < 5; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "exists") {
				continue
			}
			t.Fatalf("ip netns add %s: %v\n%s (the fleet test needs root and iproute2)", name, err, out)
		}
		n := netns{name: name}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v\n%s", name, err, out)
			}
		})
		ipCmd(t, "-n", name, "link", "set", "lo", "up")
		return n
	}
	t.Fatalf("no free network namespace name for %s", base)
	return netns{}
}

// fleetNet builds the server namespace with its bridge and n runner
// namespaces joined to it.
func fleetNet(t testing.TB, base string, n int) (netns, []netns) {
	t.Helper()
	srv := addNetns(t, base+"s")
	ipCmd(t, "-n", srv.name, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", srv.name, "addr", "add", fleetServerIP+fleetPrefix, "dev", "br0")
	ipCmd(t, "-n", srv.name, "link", "set", "br0", "up")
	hosts := make([]netns, n)
	for i := range hosts {
		h := addNetns(t, fmt.Sprintf("%sh%d", base, i))
		peer := fmt.Sprintf("vh%d", i)
		ipCmd(t, "-n", h.name, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", srv.name)
		ipCmd(t, "-n", srv.name, "link", "set", peer, "master", "br0")
		ipCmd(t, "-n", srv.name, "link", "set", peer, "up")
		ipCmd(t, "-n", h.name, "addr", "add", fleetHostIP(i)+fleetPrefix, "dev", "eth0")
		ipCmd(t, "-n", h.name, "link", "set", "eth0", "up")
		hosts[i] = h
	}
	return srv, hosts
}

// listenIn opens a TCP listener inside ns. A socket stays in the namespace it
// was made in, so the server then runs on ordinary goroutines; the thread
// that switched namespace is locked and never unlocked, so Go retires it.
func listenIn(t testing.TB, ns netns, addr string) net.Listener {
	t.Helper()
	type res struct {
		ln  net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(ns.path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{err: fmt.Errorf("open %s: %w", ns.path(), err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- res{err: fmt.Errorf("setns %s: %w", ns.name, err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- res{ln: ln, err: err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns.name, r.err)
	}
	return r.ln
}

// cutRule rejects, with a TCP reset, what ns sends to the server's port: the
// host loses that service only (Trakkar, not the forge, not Docker's socket).
func cutRule(ns netns, port int, add bool) error {
	op := "-D"
	if add {
		op = "-A"
	}
	out, err := exec.Command("ip", "netns", "exec", ns.name, "iptables", "-w", op, "OUTPUT", "-p", "tcp",
		"-d", fleetServerIP, "--dport", fmt.Sprint(port), "-j", "REJECT", "--reject-with", "tcp-reset").CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s in %s: %w: %s", op, ns.name, err, out)
	}
	return nil
}

// proc is a runner process started inside a namespace.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startIn runs bin inside ns (`ip netns exec` replaces itself with bin, so
// signals reach the runner itself).
func startIn(t testing.TB, ns netns, env []string, dir, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name, bin}, args...)...)
	cmd.Env, cmd.Dir = env, dir
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", bin, ns.name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(30 * time.Second) })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop drains the runner (SIGTERM) and kills it if it has not exited in time.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// fleetEnv is the environment of a runner process: the host's, minus
// anything that would point it elsewhere, plus what it is given.
func fleetEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TRAKKAR_") || k == "GH_TOKEN" || k == "GITHUB_TOKEN" || strings.HasPrefix(k, "ANTHROPIC_") ||
			k == "HTTP_PROXY" || k == "HTTPS_PROXY" || k == "http_proxy" || k == "https_proxy" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

package supervisor_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// hostListener accepts and counts TCP connections on addr, so a test can tell
// that nothing from a container reached the host.
func hostListener(t *testing.T, addr string) (port string, hits *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hits = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, hits
}

// bridgeAddress is the host's address on the engine's default bridge (docker0).
func bridgeAddress(t *testing.T) string {
	t.Helper()
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("default bridge: %v", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address: %v", addrs)
	return ""
}

// hostAddresses are the host's own IPv4 addresses other than loopback.
func hostAddresses(t *testing.T) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// Under --network allowlist the proxy is all the agent can reach: raw TCP to
// the default gateway, the default bridge's host address and every address of
// the host fails, though servers listen there on all interfaces. Under gVisor
// too: the sandbox reaches the proxy's socket (runsc --host-uds=open).
func TestAllowlistReachesOnlyTheProxy(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, allowlistReachesOnlyTheProxy)
}

func allowlistReachesOnlyTheProxy(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{})
	netName, _ := outside(t, e)
	anyPort, anyHits := hostListener(t, "0.0.0.0:0")
	bridge := bridgeAddress(t)
	bridgePort, bridgeHits := hostListener(t, net.JoinHostPort(bridge, "0"))
	probes := []string{
		"fake:scenario=netprobe",
		"fake:probe=url:http://allowed.test:8080/",
		"fake:probe=gateway:" + anyPort,
		"fake:probe=tcp:" + net.JoinHostPort(bridge, anyPort),
		"fake:probe=tcp:" + net.JoinHostPort(bridge, bridgePort),
		"fake:probe=tcp:172.17.0.1:" + anyPort,
		"fake:probe=dns:example.com",
	}
	var failing []string
	for _, ip := range hostAddresses(t) {
		probes = append(probes, "fake:probe=tcp:"+net.JoinHostPort(ip, anyPort))
		failing = append(failing, "PROBE tcp:"+net.JoinHostPort(ip, anyPort)+" failed")
	}
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "NET-4", Title: "Reach the host", Description: strings.Join(probes, "\n")}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(func(c *supervisor.Config) {
		c.Runtime = rt.runtime
		c.Network = supervisor.NetworkAllowlist
		c.AllowDomains = []string{"allowed.test"}
		c.EgressNetwork = netName
	}))
	rv := e.waitCompleted("NET-4", 120*time.Second)
	texts := eventTexts(rv.Events)
	t.Logf("events:\n%s", texts)
	for _, want := range append([]string{
		`PROBE url:http://allowed.test:8080/ status 200 body "ok-from-target"`,
		"PROBE gateway:" + anyPort + " failed",
		"PROBE tcp:" + net.JoinHostPort(bridge, anyPort) + " failed",
		"PROBE tcp:" + net.JoinHostPort(bridge, bridgePort) + " failed",
		"PROBE tcp:172.17.0.1:" + anyPort + " failed",
		"PROBE dns:example.com failed",
	}, failing...) {
		if !strings.Contains(texts, want) {
			t.Errorf("missing %q in:\n%s", want, texts)
		}
	}
	if n, m := anyHits.Load(), bridgeHits.Load(); n+m != 0 {
		t.Errorf("the host's servers took %d connections on 0.0.0.0 and %d on %s from the agent", n, m, bridge)
	}
}

// With --pin-model-key the model is reachable only through the task's pinned
// path and only with the task's own secret: a CONNECT to the model host is
// refused, a wrong key is refused, and no other container reaches the injector.
func TestPinnedModelKeyOnlyForTheTask(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, pinnedModelKeyOnlyForTheTask)
}

func pinnedModelKeyOnlyForTheTask(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{})
	netName, _ := outside(t, e)
	desc := strings.Join([]string{
		"fake:scenario=netprobe",
		"fake:probe=exec:echo key=$ANTHROPIC_API_KEY base=$ANTHROPIC_BASE_URL",
		"fake:probe=exec:grep -c " + modelKey[len(modelKey)-12:] + " /proc/self/environ /proc/1/environ || true",
		"fake:probe=model:/index.html",
		"fake:probe=model-as:sk-ant-api03-attackerOwnKey /index.html",
		"fake:probe=connect:model.test:8080",
		"fake:probe=connect:api.anthropic.com:443",
		"fake:probe=url:http://allowed.test:8080/",
		// Time for the test to try the injector from another container.
		"fake:probe=exec:sleep 12",
	}, "\n")
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "NET-3", Title: "Pinned key", Description: desc}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(func(c *supervisor.Config) {
		c.Runtime = rt.runtime
		c.Network = supervisor.NetworkAllowlist
		c.AllowDomains = []string{"allowed.test", "model.test", "api.anthropic.com"}
		c.EgressNetwork = netName
		c.PinModelKey = true
		c.ModelAPIURL = "http://model.test:8080"
	}))

	// Another container on the proxy's network tries the proxy's ports directly,
	// once the agent has used the pinned path (so the proxy is serving).
	waitFor(t, 90*time.Second, "the agent's first model call", func() bool {
		rv, ok := e.lastRun("NET-3")
		return ok && strings.Contains(eventTexts(rv.Events), "PROBE model:/index.html")
	})
	var ip string
	waitFor(t, 60*time.Second, "the egress proxy", func() bool {
		cs, err := e.dc.List(context.Background(), map[string]string{supervisor.LabelRunner: e.runner, supervisor.LabelRole: supervisor.RoleEgress})
		if err != nil || len(cs) == 0 {
			return false
		}
		out, err := exec.Command("docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "`+netName+`").IPAddress}}`, cs[0].ID).Output()
		ip = strings.TrimSpace(string(out))
		return err == nil && ip != ""
	})
	// busybox nc, not wget: this image's busybox wget crashes.
	answers := func(hostport string) (bool, string) {
		req := `printf 'GET /index.html HTTP/1.0\r\n\r\n' | busybox nc -w 3 ` + hostport
		out, _ := exec.Command("docker", "exec", netName, "/bin/sh", "-c", req).CombinedOutput()
		return strings.HasPrefix(string(out), "HTTP/"), string(out)
	}
	// The same command works against the neighbour's own server.
	if ok, out := answers("127.0.0.1 8080"); !ok {
		t.Fatalf("the neighbour cannot fetch at all: %q", out)
	}
	for _, port := range []string{"3129", "3128"} {
		if ok, out := answers(ip + " " + port); ok {
			t.Errorf("a neighbour container reached the egress proxy's port %s: %q", port, out)
		}
	}

	// pid 1 is the non-dumpable worker init: under runc its environment is
	// closed to the agent; gVisor lets it be read, and it holds no real key.
	environ := `/proc/self/environ:0\ngrep: /proc/1/environ: Permission denied`
	if rt.runtime == "runsc" {
		environ = `/proc/self/environ:0\n/proc/1/environ:0`
	}
	rv := e.waitCompleted("NET-3", 120*time.Second)
	texts := eventTexts(rv.Events)
	t.Logf("events:\n%s", texts)
	for _, want := range []string{
		"key=[REDACTED] base=http://127.0.0.1:3129", // the per-task secret is masked too
		"base=http://127.0.0.1:3129",
		environ,
		`PROBE model:/index.html status 200 body "ok-from-target"`,
		"PROBE model-as:sk-ant-api03-attackerOwnKey /index.html status 401",
		"PROBE connect:model.test:8080 status 403",
		"PROBE connect:api.anthropic.com:443 status 403",
		`PROBE url:http://allowed.test:8080/ status 200 body "ok-from-target"`,
		"Model key pinned in the egress proxy",
	} {
		if !strings.Contains(texts, want) {
			t.Errorf("missing %q in:\n%s", want, texts)
		}
	}
	if strings.Contains(texts, "pinned-by-egress-proxy") {
		t.Errorf("the agent's placeholder is a fixed value, not a per-task secret:\n%s", texts)
	}
}

// A verify step under --network allowlist runs like the agent: no network of
// its own, the allowlisted names through the proxy on its loopback port.
func TestVerifyUnderAllowlist(t *testing.T) {
	parallel(t)
	anyPort, anyHits := hostListener(t, "0.0.0.0:0")
	bridge := bridgeAddress(t)
	// stdin stays open a while: Go's server drops a request whose client
	// half-closes before the answer.
	cmd := `(printf 'GET http://allowed.test:8080/index.html HTTP/1.0\r\nHost: allowed.test:8080\r\n\r\n'; sleep 3) | busybox nc -w 5 127.0.0.1 3128 | grep -q ok-from-target && echo verify-proxy-ok; ` +
		`busybox nc -w 3 ` + bridge + ` ` + anyPort + ` </dev/null && echo verify-reached-host; ` +
		// The pinned model path is the agent's alone: no secret, no injector port.
		`echo "verify-key=${ANTHROPIC_API_KEY:-none}"; busybox nc -w 3 127.0.0.1 3129 </dev/null && echo verify-reached-model; ` +
		`test "$(cat app.txt)" = ok`
	e := newVerifyEnv(t, cmd)
	netName, _ := outside(t, e)
	createTask(t, e, "NET-5", "Make it ok\nfake:write=app.txt=ok\n")
	e.start(e.verifyConfig(func(c *supervisor.Config) {
		c.Network = supervisor.NetworkAllowlist
		c.AllowDomains = []string{"allowed.test"}
		c.EgressNetwork = netName
		c.PinModelKey = true
		c.ModelAPIURL = "http://model.test:8080"
	}))
	rv := e.waitCompleted("NET-5", 150*time.Second)
	logs := logText(rv.Events)
	if !strings.Contains(logs, "verify-proxy-ok") || strings.Contains(logs, "verify-reached-host") ||
		!strings.Contains(logs, "verify-key=none") || strings.Contains(logs, "verify-reached-model") {
		t.Errorf("verify output:\n%s\nevents:\n%s", logs, eventTexts(rv.Events))
	}
	if n := anyHits.Load(); n != 0 {
		t.Errorf("the host's server took %d connections from the verify step", n)
	}
}

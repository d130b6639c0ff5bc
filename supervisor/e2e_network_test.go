package supervisor_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// outside starts a web server reachable as allowed.test, blocked.test and
// model.test on a network of the test's own, standing in for the internet. The
// container is named like the network, so tests can exec in it.
func outside(t *testing.T, e *env) (network, ip string) {
	t.Helper()
	ctx := context.Background()
	name := "trakkar-test-outside-" + testimage.RunID() + "-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	labels := map[string]string{"in.trakkar.agent.test": testimage.RunID()}
	netID, err := e.dc.CreateNetwork(ctx, name, false, labels)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.dc.RemoveNetwork(context.Background(), netID) })
	id, err := e.dc.Create(ctx, docker.Spec{
		Name:       name,
		Image:      e.image,
		Entrypoint: []string{"/bin/sh", "-c", "echo ok-from-target > /tmp/index.html && exec busybox httpd -f -p 8080 -h /tmp"},
		User:       "1000:1000",
		Labels:     labels,
		Network:    name,
		Aliases:    []string{"allowed.test", "blocked.test", "model.test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = e.dc.Stop(cctx, id, time.Second)
		_ = e.dc.Remove(cctx, id)
	})
	if _, err := e.dc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "`+name+`").IPAddress}}`, id).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("target address: %v %q", err, out)
	}
	return name, strings.TrimSpace(string(out))
}

// Under --network allowlist the agent reaches allowlisted names only through
// the egress proxy; other names, raw TCP and DNS to the outside fail, and
// blocked attempts show up in the task.
func TestNetworkAllowlist(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	net, ip := outside(t, e)
	desc := strings.Join([]string{
		"fake:scenario=netprobe",
		"fake:probe=url:http://allowed.test:8080/",
		"fake:probe=url:http://blocked.test:8080/",
		"fake:probe=tcp:" + ip + ":8080",
		"fake:probe=dns:allowed.test",
		"fake:probe=dns:example.com",
	}, "\n")
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "NET-1", Title: "Probe the network", Description: desc}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(func(c *supervisor.Config) {
		c.Network = supervisor.NetworkAllowlist
		c.AllowDomains = []string{"allowed.test"}
		c.EgressNetwork = net
	}))
	rv := e.waitCompleted("NET-1", 90*time.Second)
	texts := eventTexts(rv.Events)
	for _, want := range []string{
		`PROBE url:http://allowed.test:8080/ status 200 body "ok-from-target"`,
		"PROBE url:http://blocked.test:8080/ status 403",
		"PROBE tcp:" + ip + ":8080 failed",
		"PROBE dns:allowed.test failed",
		"PROBE dns:example.com failed",
	} {
		if !strings.Contains(texts, want) {
			t.Errorf("missing %q in:\n%s", want, texts)
		}
	}
	if !hasEvent(rv.Events, trakkar.EventError, "Network access blocked: blocked.test:8080") {
		t.Errorf("blocked attempt not reported:\n%s", texts)
	}
	waitFor(t, 20*time.Second, "proxy and task network removed", func() bool {
		nets, err := e.dc.ListNetworks(context.Background(), map[string]string{supervisor.LabelRunner: e.runner})
		return err == nil && len(nets) == 0 && len(e.managedContainers()) == 0
	})
}

// Under --network none nothing is reachable at all.
func TestNetworkNone(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	_, ip := outside(t, e)
	desc := "fake:scenario=netprobe\nfake:probe=tcp:" + ip + ":8080\nfake:probe=dns:example.com\n"
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "NET-2", Title: "No network", Description: desc}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(func(c *supervisor.Config) { c.Network = supervisor.NetworkNone }))
	rv := e.waitCompleted("NET-2", 90*time.Second)
	texts := eventTexts(rv.Events)
	for _, want := range []string{"PROBE tcp:" + ip + ":8080 failed", "PROBE dns:example.com failed"} {
		if !strings.Contains(texts, want) {
			t.Errorf("missing %q in:\n%s", want, texts)
		}
	}
}

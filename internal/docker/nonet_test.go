package docker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A container on no network with a hosts file of its own gets none of the
// engine's networking, yet sees what plain none gives it: its loopback, up,
// and "localhost" resolving to it.
func TestNoNetworkWithAHostsFile(t *testing.T) {
	t.Parallel()
	c := newTestClient(t)
	img := probeImage(t, c)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		hostsFile string
		disabled  bool
	}{
		{"engine's none", "", false},
		{"none with a hosts file", hosts, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Each subtest's own context: a parallel subtest may wait long
			// for its turn after the parent returned.
			ctx, cancel := context.WithTimeout(context.Background(), slowEngine*60*time.Second)
			defer cancel()
			s := probeSpec(img, "net")
			s.Network, s.HostsFile = "none", tc.hostsFile
			id, waitC := startContainer(ctx, t, c, s)
			if res := <-waitC; res.Err != nil || res.Status.Code != 0 {
				t.Fatalf("probe ended with %+v", res)
			}
			stdout, stderr := logs(ctx, t, c, id)
			for _, want := range []string{"up=lo\n", "localhost=127.0.0.1", "loopback=pong"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("probe printed %q (stderr %q), want %q", stdout, stderr, want)
				}
			}
			if n := strings.Count(stdout, "up="); n != 1 {
				t.Errorf("%d interfaces up, want the loopback alone:\n%s", n, stdout)
			}
			info, err := c.Inspect(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if info.NetworkDisabled != tc.disabled || info.NetworkMode != "none" {
				t.Errorf("network disabled %v, mode %q; want %v, none", info.NetworkDisabled, info.NetworkMode, tc.disabled)
			}
		})
	}
}

// A hosts file is only for a container on no network.
func TestHostsFileNeedsNetworkNone(t *testing.T) {
	for _, network := range []string{"", "bridge", "trakkar-egress-x"} {
		s := Spec{Image: "img", User: "1000:1000", Network: network, HostsFile: "/tmp/hosts"}
		if _, _, err := s.build(nil); err == nil || !strings.Contains(err.Error(), "needs network none") {
			t.Errorf("network %q with a hosts file: err %v, want one saying it needs network none", network, err)
		}
	}
	s := Spec{Image: "img", User: "1000:1000", Network: "none", HostsFile: "relative/hosts"}
	if _, _, err := s.build(nil); err == nil {
		t.Error("a relative hosts file was accepted")
	}
}

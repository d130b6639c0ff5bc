package main

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// refusingAddr is a loopback address nothing listens on.
func refusingAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentAddr accepts connections and never answers.
func silentAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// An unreachable Trakkar at startup is said at the first attempt's timeout
// (1.2 s) and again while it lasts, without a flood, and the first signal
// ends the runner at once.
func TestUnreachableTrakkarAtStartup(t *testing.T) {
	cases := []struct {
		name  string
		addr  func(*testing.T) string
		cause string
	}{
		{"refuses connections", refusingAddr, "connection refused"},
		{"never answers", silentAddr, "no answer within"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url := "http://" + c.addr(t)
			repo := gitInit(t, "https://github.com/acme/web.git")
			r := startRunner(t, repo, []string{"--dry-run", "--provider", "claude_code"},
				[]string{"TRAKKAR_TOKEN=trk_agent_unreachable", "TRAKKAR_API_URL=" + url})
			want := "cannot reach Trakkar at " + url + ": "
			// The first attempt gives up after 1.2 s; the bound only fails a
			// runner that never says it, with time for the binary to start
			// on a loaded host (the schedule itself has unit tests).
			r.waitOutput(t, want, 8*time.Second)
			line := r.out.String()
			line = line[strings.Index(line, want):]
			line, _, _ = strings.Cut(line, "\n")
			if !strings.Contains(line, c.cause) || !strings.Contains(line, "; retrying") {
				t.Fatalf("message %q: want the cause %q and that it retries", line, c.cause)
			}
			time.Sleep(6 * time.Second)
			if n := strings.Count(r.out.String(), want); n < 2 || n > 4 {
				t.Fatalf("said it %d times in ~8 s, want it repeated every few seconds:\n%s", n, r.out.String())
			}
			start := time.Now()
			if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// The bound only fails a runner that does not stop: the signal
			// lands at an unknown point of a pause, so it cannot tell a cut
			// pause from one waited out. TestReachTrakkarStopsOnSignal proves
			// the cut, against a minute-long pause.
			code := r.exitWithin(t, 4*time.Second)
			t.Logf("exited %d after %s", code, time.Since(start).Round(time.Millisecond))
			if code != 0 {
				t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, r.out.String())
			}
			if !strings.Contains(r.out.String(), "stopped before starting") {
				t.Fatalf("no clean stop message:\n%s", r.out.String())
			}
		})
	}
}

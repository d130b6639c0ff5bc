package egress

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The forwarder joins a loopback TCP port in the agent's container to the
// proxy's unix socket, byte for byte in both directions.
func TestForwardPipesToTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer uln.Close()
	go func() {
		for {
			c, err := uln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprint(c, "echo "+line)
			}()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Forward(ctx, ln, sock)
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "hello %d\n", i)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != fmt.Sprintf("echo hello %d\n", i) {
			t.Fatalf("round trip %d: %q %v", i, got, err)
		}
	}
}

func TestForwardMainRunsTheCommand(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"exit code passes through", []string{"--forward", "127.0.0.1:0=" + filepath.Join(dir, "p.sock"), "--", "/bin/sh", "-c", "exit 7"}, 7},
		{"success", []string{"--forward", "127.0.0.1:0=" + filepath.Join(dir, "p.sock"), "--", "/bin/true"}, 0},
		{"no command", []string{"--forward", "127.0.0.1:0=" + filepath.Join(dir, "p.sock")}, 2},
		{"bad forward", []string{"--forward", "127.0.0.1:0", "--", "/bin/true"}, 2},
		{"relative socket", []string{"--forward", "127.0.0.1:0=p.sock", "--", "/bin/true"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			if got := ForwardMain(context.Background(), tc.args, os.Stdout, &stderr); got != tc.code {
				t.Fatalf("exit %d, want %d (%s)", got, tc.code, stderr.String())
			}
		})
	}
}

// The proxy serves on unix sockets in the task's folder, readable and
// writable by its own user only.
func TestMainServesOnUnixSockets(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	t.Setenv(InjectValueEnv, "sk-real")
	t.Setenv(InjectSecretEnv, "sk-secret")
	go func() {
		done <- Main(ctx, []string{"--listen", "unix:" + filepath.Join(dir, "proxy.sock"), "--allow", "a.test",
			"--inject-listen", "unix:" + filepath.Join(dir, "model.sock"), "--inject-upstream", "http://127.0.0.1:1"}, os.Stdout, os.Stderr)
	}()
	for _, name := range []string{"proxy.sock", "model.sock"} {
		p := filepath.Join(dir, name)
		deadline := time.Now().Add(5 * time.Second)
		// The socket is restricted just after it is bound: wait for the mode.
		for {
			fi, err := os.Stat(p)
			if err == nil && fi.Mode()&os.ModeSocket != 0 && fi.Mode().Perm() == 0o600 {
				break
			}
			if time.Now().After(deadline) {
				if err == nil {
					t.Fatalf("%s: mode %v, want a socket with 0600", name, fi.Mode())
				}
				t.Fatalf("%s not created: %v", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c, err := net.Dial("unix", filepath.Join(dir, "proxy.sock"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "CONNECT b.test:443 HTTP/1.1\r\nHost: b.test:443\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.Contains(line, "403") {
		t.Fatalf("proxy over the socket answered %q", line)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

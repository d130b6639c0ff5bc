package egress

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Forward accepts connections on ln until ctx ends and pipes each one to the
// unix socket. It runs inside the agent's container, which has no network:
// tools keep using HTTPS_PROXY=http://127.0.0.1:3128 while the bytes go to the
// proxy's socket, the container's only way out.
func Forward(ctx context.Context, ln net.Listener, socket string) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go pipe(c, socket)
	}
}

func pipe(c net.Conn, socket string) {
	defer c.Close()
	u, err := net.DialTimeout("unix", socket, 10*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	go func() {
		_, _ = io.Copy(u, c)
		closeWrite(u)
	}()
	_, _ = io.Copy(c, u)
}

// forwards is a repeatable --forward addr=socket flag.
type forwards [][2]string

func (f *forwards) String() string { return fmt.Sprint(*f) }

func (f *forwards) Set(v string) error {
	addr, sock, ok := strings.Cut(v, "=")
	if !ok || addr == "" || !filepath.IsAbs(sock) {
		return fmt.Errorf("want host:port=/absolute/socket, got %q", v)
	}
	*f = append(*f, [2]string{addr, sock})
	return nil
}

// ForwardMain is `egress-forward --forward 127.0.0.1:3128=/trakkar/egress/proxy.sock
// -- command…`: it serves the forwards, runs the command (the worker, or a
// verify step) and exits with its status, passing a stop on to it.
func ForwardMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("egress-forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var fw forwards
	fs.Var(&fw, "forward", "loopback address=unix socket to pipe it to (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmdArgs := fs.Args()
	if len(cmdArgs) == 0 {
		fmt.Fprintln(stderr, "egress-forward: no command to run")
		return 2
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, f := range fw {
		ln, err := net.Listen("tcp", f[0])
		if err != nil {
			fmt.Fprintln(stderr, "egress-forward:", err)
			return 1
		}
		go Forward(fctx, ln, f[1])
	}
	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "egress-forward:", err)
		return 127
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-exited:
		}
	}()
	err := cmd.Wait()
	close(exited)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintln(stderr, "egress-forward:", err)
		return 1
	}
}

// Command probe is the program inside the docker package's test image. Each mode
// exercises one container property and prints what it saw, so the tests can
// assert on real behaviour inside the sandbox.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe MODE [ARG]")
		os.Exit(2)
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch os.Args[1] {
	case "exit":
		n, _ := strconv.Atoi(arg)
		os.Exit(n)
	case "out":
		for i := 0; i < 3; i++ {
			fmt.Fprintf(os.Stdout, "out-%d\n", i)
			fmt.Fprintf(os.Stderr, "err-%d\n", i)
			time.Sleep(100 * time.Millisecond)
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		sleep()
	case "term":
		fmt.Println("ready")
		sleep()
	case "alloc":
		alloc(arg)
	case "spin":
		spin(arg)
	case "rootfs":
		rootfs()
	case "forks":
		n, _ := strconv.Atoi(arg)
		forks(n)
	case "status":
		status()
	case "flood":
		n, _ := strconv.Atoi(arg)
		flood(n)
	case "net":
		network()
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// sleep blocks until a signal ends the process. (An empty select would be
// reported as a deadlock by the Go runtime.)
func sleep() {
	for {
		time.Sleep(time.Hour)
	}
}

// spin keeps arg MiB of memory live and one CPU busy until a signal ends it.
func spin(arg string) {
	mib, _ := strconv.Atoi(arg)
	keep := make([]byte, max(mib, 1)<<20)
	for j := 0; j < len(keep); j += 4096 {
		keep[j] = 1
	}
	fmt.Println("ready")
	sum := 0
	for i := 0; ; i++ {
		sum += int(keep[(i*4096)%len(keep)])
		if sum < 0 { // never: keeps the loop and keep alive
			fmt.Println(sum)
		}
	}
}

// alloc touches arg MiB of memory, one page at a time, keeping all of it live.
func alloc(arg string) {
	mib, _ := strconv.Atoi(arg)
	var keep [][]byte
	for i := 0; i < mib; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	fmt.Printf("allocated %d MiB\n", len(keep))
}

func rootfs() {
	report("root-write", os.WriteFile("/probe-write", []byte("x"), 0o644))
	report("tmp-write", os.WriteFile("/tmp/probe-write", []byte("x"), 0o644))
	report("tmp-exec", execFromTmp())
}

// execFromTmp copies this binary into /tmp and runs it, as a build tool would.
func execFromTmp() error {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer self.Close()
	dst, err := os.OpenFile("/tmp/probe-copy", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, self); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return exec.Command("/tmp/probe-copy", "exit", "0").Run()
}

func report(what string, err error) {
	if err != nil {
		fmt.Printf("%s=err:%v\n", what, err)
		return
	}
	fmt.Printf("%s=ok\n", what)
}

// forks creates up to n processes that sleep forever, with raw clone calls so the
// Go runtime never needs a thread the pids limit might refuse. It exits 0 when a
// clone was refused, 1 when all n succeeded.
func forks(n int) {
	runtime.LockOSThread()
	started := 0
	for i := 0; i < n; i++ {
		pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if errno != 0 {
			fmt.Printf("forks=%d err=%v\n", started, errno)
			os.Exit(0)
		}
		if pid == 0 {
			sleepForever()
		}
		started++
	}
	fmt.Printf("forks=%d err=none\n", started)
	os.Exit(1)
}

// sleepForever runs in a forked child that has only one thread and no working
// runtime, so it makes nothing but raw system calls.
//
//go:nosplit
func sleepForever() {
	for {
		syscall.RawSyscall6(syscall.SYS_PPOLL, 0, 0, 0, 0, 0, 0)
	}
}

func status() {
	fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Printf("status=err:%v\n", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp":
			fmt.Printf("%s=%s\n", k, strings.TrimSpace(v))
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		fmt.Printf("nofile=%d:%d\n", rl.Cur, rl.Max)
	}
	ifs, _ := net.Interfaces()
	names := make([]string, 0, len(ifs))
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	fmt.Printf("interfaces=%s\n", strings.Join(names, ","))
	report("home-write", os.WriteFile("/home/agent/probe", []byte("x"), 0o600))
	host, _ := os.Hostname()
	fmt.Printf("hostname=%s\n", host)
}

// flood writes n numbered lines to stdout as fast as it can, every 5000th one
// longer than the engine's 16 KiB message size, so the log rotates while being
// followed and long lines arrive in parts.
func flood(n int) {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	pad := strings.Repeat("x", 40<<10)
	for i := 1; i <= n; i++ {
		if i%5000 == 0 {
			fmt.Fprintf(w, "line-%07d %s\n", i, pad)
		} else {
			fmt.Fprintf(w, "line-%07d\n", i)
		}
	}
	_ = w.Flush()
}

// network prints the interfaces that are up, what "localhost" resolves to and
// whether a loopback connection goes through.
func network() {
	ifs, err := net.Interfaces()
	if err != nil {
		fmt.Println("interfaces=err:", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 {
			fmt.Printf("up=%s\n", i.Name)
		}
	}
	addrs, err := net.LookupHost("localhost")
	fmt.Printf("localhost=%s err=%v\n", strings.Join(addrs, ","), err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("loopback=err:", err)
		return
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("pong"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", "localhost:"+strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	if err != nil {
		fmt.Println("loopback=err:", err)
		return
	}
	b, _ := io.ReadAll(c)
	c.Close()
	fmt.Printf("loopback=%s\n", b)
}

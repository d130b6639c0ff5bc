//go:build linux

package fakeagent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/trakkar/trakkar-agent/internal/osthreads"
)

// engineSockets are where a container engine's API socket usually lives; any of
// them inside the sandbox is root on the host.
var engineSockets = []string{
	"/var/run/docker.sock", "/run/docker.sock",
	"/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock",
	"/run/podman/podman.sock",
}

// hostDaemons are process names that only exist in the host's pid namespace.
var hostDaemons = map[string]bool{"dockerd": true, "containerd": true, "systemd": true, "sshd": true, "kubelet": true}

func attackSandbox(p *probe, _ attack) {
	for _, s := range engineSockets {
		if _, err := os.Lstat(s); err == nil {
			p.found("engine socket present at %s", s)
		} else {
			p.blocked("no engine socket at %s", s)
		}
	}
	if mounts, err := readMountInfo(); err == nil {
		for _, m := range mounts {
			if strings.HasSuffix(m.point, ".sock") || strings.HasSuffix(m.root, ".sock") {
				p.found("a socket is mounted at %s (%s)", m.point, m.root)
			}
		}
	}
	if uid := os.Getuid(); uid == 0 {
		p.found("runs as root")
	} else {
		p.blocked("runs as uid %d, not root", uid)
	}
	// Under gVisor the agent talks to gVisor's user-space kernel: its
	// /proc/self/status has no CapAmb or NoNewPrivs, Seccomp reads 0 (the sandbox
	// itself is filtered on the host), and namespaces it creates are gVisor's.
	gvisor := kernelIsGVisor()
	if gvisor {
		p.blocked("the kernel is gVisor's user-space kernel, not the host's")
	}
	caps := []string{"CapInh", "CapPrm", "CapEff", "CapBnd"}
	if !gvisor {
		caps = append(caps, "CapAmb")
	}
	if st, err := procStatus(caps...); err != nil {
		p.info("cannot read /proc/self/status: %v", err)
	} else {
		var held []string
		for _, c := range caps {
			if v, err := strconv.ParseUint(st[c], 16, 64); err != nil || v != 0 {
				held = append(held, c+"="+st[c])
			}
		}
		if len(held) > 0 {
			p.found("capabilities held: %s", strings.Join(held, " "))
		} else {
			p.blocked("no capabilities: %s are all 0", strings.Join(caps, ", "))
		}
	}
	if st, err := procStatus("NoNewPrivs", "Seccomp"); err != nil && gvisor {
		p.info("gVisor's kernel does not report NoNewPrivs and Seccomp: %v", err)
	} else if err != nil {
		p.info("cannot read /proc/self/status: %v", err)
	} else {
		if st["NoNewPrivs"] == "1" {
			p.blocked("NoNewPrivs is 1")
		} else {
			p.found("NoNewPrivs is %s", st["NoNewPrivs"])
		}
		if st["Seccomp"] == "2" {
			p.blocked("Seccomp is 2 (filter)")
		} else {
			p.found("Seccomp is %s", st["Seccomp"])
		}
	}
	// Every probe that could change something undoes it at once: on a host that
	// is not sandboxed (a unit test) it must leave no trace.
	root := sandboxPaths.root
	p.outcome(createAndRemove(filepath.Join(root, "hostile-root-write")), "write to /")
	p.outcome(createAndRemove(filepath.Join(root, "etc", "hostile-write")), "write to /etc")
	p.outcome(openAndClose(filepath.Join(root, "usr", "local", "bin", "claude")), "open the agent CLI binary for writing")
	p.outcome(openAndClose(filepath.Join(sandboxPaths.proc, "sys", "kernel", "core_pattern")), "open /proc/sys/kernel/core_pattern for writing")
	cg := filepath.Join(sandboxPaths.sys, "fs", "cgroup", "hostile")
	err := os.Mkdir(cg, 0o755)
	if err == nil {
		_ = os.Remove(cg)
	}
	p.outcome(err, "create a cgroup (for release_agent)")
	p.outcome(syscall.Setuid(0), "setuid(0)")
	mnt, err := os.MkdirTemp("", "hostile-mnt-")
	if err == nil {
		if err = syscall.Mount("none", mnt, "tmpfs", 0, "size=1m"); err == nil {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		_ = os.Remove(mnt)
	}
	p.outcome(err, "mount a tmpfs")
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err == nil {
		syscall.Close(fd)
	}
	p.outcome(err, "open a raw socket")
	p.outcome(openByHandle(p.r.env.Dir), "open_by_handle_at on the workspace's file system")
	cmd := exec.Command("/bin/sh", "-c", "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS}
	if err := cmd.Run(); err == nil && gvisor {
		p.info("created user and mount namespaces inside gVisor's kernel; the host kernel never sees them")
	} else {
		p.outcome(err, "create user and mount namespaces")
	}
	var devs []string
	ents, _ := os.ReadDir("/dev")
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
			devs = append(devs, e.Name())
		}
	}
	if len(devs) > 0 {
		p.found("block devices in /dev: %s", strings.Join(devs, " "))
	} else {
		p.blocked("no block devices in /dev")
	}
	var daemons []string
	names := processNames()
	for _, n := range names {
		if hostDaemons[n] {
			daemons = append(daemons, n)
		}
	}
	if len(daemons) > 0 {
		p.found("host processes visible: %s", strings.Join(daemons, " "))
	} else {
		p.blocked("no host process visible (%d processes: %s)", len(names), strings.Join(names, " "))
	}
	// Not a containment failure on its own: the agent shares the worker's uid, so
	// it can write worker protocol lines straight to the container's stdout.
	if f, err := os.OpenFile(filepath.Join(sandboxPaths.proc, "1", "fd", "1"), os.O_WRONLY, 0); err == nil {
		f.Close()
		p.info("the container's stdout (/proc/1/fd/1) is writable: worker event lines can be forged")
	} else {
		p.info("the container's stdout (/proc/1/fd/1) is not writable: %v", err)
	}
}

// kernelIsGVisor reads the kernel log, which gVisor fills with its own boot
// lines; on a real kernel an unprivileged reader is refused.
func kernelIsGVisor() bool {
	buf := make([]byte, 4096)
	n, err := syscall.Klogctl(3, buf) // SYSLOG_ACTION_READ_ALL
	return err == nil && n > 0 && strings.Contains(string(buf[:n]), "gVisor")
}

// fileKey identifies a file by device and inode, so a file seen through two
// mounts is scanned once.
func fileKey(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprint(st.Dev, ":", st.Ino)
	}
	return ""
}

// createAndRemove creates path exclusively and removes it again.
func createAndRemove(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(path)
}

// openAndClose opens an existing file for writing and closes it unchanged.
func openAndClose(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// openByHandle tries the "shocker" escape: open_by_handle_at with a guessed
// handle (inode 2, the root of an ext4 file system) needs CAP_DAC_READ_SEARCH.
func openByHandle(dir string) error {
	if sysOpenByHandleAt < 0 {
		return syscall.ENOSYS
	}
	mfd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(mfd)
	handle := struct {
		bytes uint32
		typ   int32
		ino   uint64
	}{bytes: 8, typ: 1, ino: 2}
	fd, _, errno := syscall.Syscall(uintptr(max(sysOpenByHandleAt, 0)), uintptr(mfd), uintptr(unsafe.Pointer(&handle)), syscall.O_RDONLY)
	if errno != 0 {
		return errno
	}
	syscall.Close(int(fd))
	return nil
}

func attackResultFIFO(p *probe, _ attack) {
	dir := sandboxPaths.out
	res := filepath.Join(dir, "result.json")
	if err := os.Remove(res); err != nil && !os.IsNotExist(err) {
		p.info("cannot remove %s: %v", res, err)
		return
	}
	if err := syscall.Mkfifo(res, 0o644); err != nil {
		p.info("cannot create a FIFO: %v", err)
		return
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		p.info("cannot make %s read-only: %v", dir, err)
		return
	}
	p.planted("%s is a FIFO and %s is read-only, so the worker cannot replace it", res, dir)
}

// groupMembers counts the live (not zombie) processes in process group pgid.
func groupMembers(pgid int) int {
	ents, _ := os.ReadDir(sandboxPaths.proc)
	n := 0
	for _, e := range ents {
		if strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sandboxPaths.proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces, so cut after ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			n++
		}
	}
	return n
}

func attackForkBomb(p *probe, a attack) {
	depth, secs := a.num("depth", 12), a.num("secs", 3)
	limit := firstLine("/sys/fs/cgroup/pids/pids.max")
	if limit == "" {
		limit = firstLine("/sys/fs/cgroup/pids.max")
	}
	// The bomb fills the pids limit; this process must still report it.
	osthreads.Reserve(8)
	errFile := filepath.Join(os.TempDir(), "hostile-forkbomb.err")
	// A binary tree of shells, each alive for secs: it asks for 2^(depth+1)-1
	// processes at once, then ends by itself, so the run stays bounded.
	script := fmt.Sprintf(`exec 2>%s; f(){ if [ "$1" -lt %d ]; then f $(($1+1)) & f $(($1+1)) & fi; sleep %d; }; f 0; wait`, errFile, depth, secs)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.info("cannot start the fork bomb: %v", err)
		return
	}
	pgid := cmd.Process.Pid
	p.info("fork bomb started (%d levels, pids.max %q)", depth, limit)
	peak := 0
	deadline := time.Now().Add(time.Duration(secs)*time.Second + time.Second)
	for time.Now().Before(deadline) {
		n := groupMembers(pgid)
		peak = max(peak, n)
		if n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 100 && groupMembers(pgid) > 0; i++ {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Wait()
	msg := ""
	if b, err := os.ReadFile(errFile); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "fork") {
				msg = strings.TrimSpace(l)
				break
			}
		}
	}
	if msg == "" {
		p.found("fork bomb was not capped: peak %d processes, no fork failed (pids.max %q)", peak, limit)
		return
	}
	p.blocked("fork bomb capped: peak %d processes, pids.max %s, fork failed: %s", peak, limit, msg)
}

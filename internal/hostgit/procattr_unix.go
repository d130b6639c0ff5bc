//go:build unix

package hostgit

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts git in its own process group and makes cancellation kill the
// whole group, so transport helpers (git-remote-https, ssh) die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// runAs makes the command run as uid:gid, with no supplementary groups.
func runAs(cmd *exec.Cmd, o Owner) error {
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(o.UID), Gid: uint32(o.GID)}
	return nil
}

package testimage

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

// scriptCommand runs a build script in a process group of its own, so a build
// that runs out of time is ended whole: killing bash alone would leave its
// debootstrap or docker build running, holding the build lock.
func scriptCommand(ctx context.Context, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

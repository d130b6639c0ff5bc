//go:build !unix

package hostgit

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

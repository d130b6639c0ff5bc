//go:build !unix

package hostgit

import (
	"errors"
	"os/exec"
)

func setProcessGroup(*exec.Cmd) {}

func runAs(*exec.Cmd, Owner) error {
	return errors.New("running git as another user is not supported here")
}

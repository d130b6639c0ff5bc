//go:build !linux

package worker

import "errors"

// Protect is only possible on Linux, where the worker runs.
func Protect() error { return errors.New("the worker runs only on linux") }

// Init is only possible on Linux, where the worker runs.
func Init([]string) int { return 2 }

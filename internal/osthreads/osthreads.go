// Package osthreads keeps spare OS threads in a Go process that shares a pids
// limit with code it does not trust.
//
// A task container's pids limit counts threads as well as processes, and the
// agent can fill it (a fork bomb, or just many build jobs). The Go runtime
// asks the kernel for a new thread whenever a goroutine blocks in a system call
// and no idle thread is left; if that clone fails, the runtime aborts the
// whole process with exit status 2. For the worker and the container's init
// that would lose the run's result, so they reserve threads at startup.
package osthreads

import (
	"runtime"
	"sync"
)

// Reserve makes the runtime start n more OS threads now and leaves them idle.
// The runtime never gives an idle thread back to the kernel, and it takes an
// idle one before it creates another, so later needs are met without a clone
// until more than n threads are needed at once.
func Reserve(n int) {
	var locked, done sync.WaitGroup
	release := make(chan struct{})
	for range n {
		locked.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			// A goroutine locked to its thread keeps that thread while it
			// waits, so the n waiting at once hold n distinct threads.
			runtime.LockOSThread()
			locked.Done()
			<-release
			// Unlocked before returning: a goroutine that ends locked takes
			// its thread with it.
			runtime.UnlockOSThread()
		}()
	}
	locked.Wait()
	close(release)
	done.Wait()
}

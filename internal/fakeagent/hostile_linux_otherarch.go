//go:build linux && !amd64 && !arm64

package fakeagent

// sysOpenByHandleAt is unknown here; the probe reports ENOSYS.
const sysOpenByHandleAt = -1

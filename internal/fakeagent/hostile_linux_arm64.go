package fakeagent

// sysOpenByHandleAt is open_by_handle_at(2) on linux/arm64 (syscall lacks it).
const sysOpenByHandleAt = 265

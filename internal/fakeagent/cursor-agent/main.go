// Command cursor-agent is a fake of Cursor's cursor-agent CLI for tests (see
// package fakeagent).
package main

import "github.com/trakkar/trakkar-agent/internal/fakeagent"

func main() { fakeagent.Main(fakeagent.Cursor) }

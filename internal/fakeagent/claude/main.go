// Command claude is a fake of the Claude Code CLI for tests (see package fakeagent).
package main

import "github.com/trakkar/trakkar-agent/internal/fakeagent"

func main() { fakeagent.Main(fakeagent.Claude) }

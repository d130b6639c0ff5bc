package main

import (
	"runtime/debug"
	"sync"
)

// version overrides the build info when set at build time with
// -ldflags "-X main.version=…"; empty: runnerVersion reads the build info.
var version string

// runnerVersion is what --version prints and what Trakkar is told.
var runnerVersion = sync.OnceValue(func() string {
	if version != "" {
		return version
	}
	info, _ := debug.ReadBuildInfo()
	return versionFrom(info)
})

// versionFrom is the module's version (a release, or the pseudo-version Go
// stamps from a checkout), else the commit it was built from, with -dirty
// when the tree had changes, else "dev".
func versionFrom(info *debug.BuildInfo) string {
	if info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return rev
}

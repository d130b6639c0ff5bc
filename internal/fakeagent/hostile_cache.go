package fakeagent

import (
	"os"
	"path/filepath"
	"sort"
)

// cacheRoot is where the runner mounts the dependency cache volumes.
var cacheRoot = "/trakkar/cache"

// cacheDirs lists the tool folders under cacheRoot.
func cacheDirs(p *probe) []string {
	ents, err := os.ReadDir(cacheRoot)
	if err != nil {
		p.info("no dependency caches at %s: %v", cacheRoot, err)
		return nil
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(cacheRoot, e.Name()))
		}
	}
	sort.Strings(dirs)
	return dirs
}

// attackCachePlant drops marker into every cache folder, as a poisoned module,
// a cargo config or a forged build result would be, for another task to use.
func attackCachePlant(p *probe, a attack) {
	marker := a.str("marker")
	for _, d := range cacheDirs(p) {
		path := filepath.Join(d, marker)
		if err := os.WriteFile(path, []byte("planted by a hostile agent\n"), 0o755); err != nil {
			p.info("cannot write %s: %v", path, err)
			continue
		}
		p.planted("%s", path)
	}
}

// attackCacheLook reports a marker that some other container planted in a
// cache folder this one sees.
func attackCacheLook(p *probe, a attack) {
	marker := a.str("marker")
	dirs := cacheDirs(p)
	for _, d := range dirs {
		path := filepath.Join(d, marker)
		if _, err := os.Lstat(path); err == nil {
			p.found("%s, planted by another container, is visible", path)
		} else {
			p.blocked("%s is not there", path)
		}
	}
	p.scanned("%d cache folders", len(dirs))
}

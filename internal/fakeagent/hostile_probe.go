package fakeagent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// sandboxPaths is the runner's container layout the probes aim at; unit tests
// point it into temporary directories.
var sandboxPaths = struct {
	proc   string // procfs
	out    string // the worker's result directory (workerproto.OutDir)
	state  string // the agent state directory the runner mounts read-write
	cursor string // where the runner mounts <state>/cursor
	root   string // the container's root: file walks and write probes start here
	sys    string // sysfs
}{proc: "/proc", out: "/trakkar/out", state: "/trakkar/state", cursor: "/home/agent/.cursor", root: "/", sys: "/sys"}

// Scan bounds: enough for the test image many times over, small enough that a
// scan of a big image ends in seconds.
const (
	scanMaxFiles    = 20000
	scanMaxBytes    = 512 << 20
	scanMaxFileSize = 64 << 20
	scanChunk       = 1 << 20
)

// skipTree reports whether a walk must not enter p: kernel trees whose files
// are not data (and can block or be endless).
func skipTree(p string) bool {
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	root, point, fstype, source string
}

func readMountInfo() ([]mountInfo, error) {
	b, err := os.ReadFile(filepath.Join(sandboxPaths.proc, "self", "mountinfo"))
	if err != nil {
		return nil, err
	}
	var out []mountInfo
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		m := mountInfo{root: unescapeMount(f[3]), point: unescapeMount(f[4])}
		for i := 6; i < len(f)-2; i++ {
			if f[i] == "-" {
				m.fstype, m.source = f[i+1], unescapeMount(f[i+2])
				break
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// scanner looks for labelled byte strings in everything it is fed and remembers
// where each turned up.
type scanner struct {
	needles []secret
	maxLen  int
	where   map[string][]string
	files   int
	bytes   int64
	seen    map[string]bool // dev:ino of scanned files
}

func newScanner(needles []secret) *scanner {
	s := &scanner{needles: needles, where: map[string][]string{}, seen: map[string]bool{}}
	for _, n := range needles {
		s.maxLen = max(s.maxLen, len(n.value))
	}
	return s
}

func (s *scanner) scanBytes(where string, b []byte) {
	for _, n := range s.needles {
		if bytes.Contains(b, n.value) && !contains(s.where[n.label], where) {
			s.where[n.label] = append(s.where[n.label], where)
		}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// scanFile reads a regular file in chunks that overlap by the longest needle, so
// a value across a chunk boundary is still seen.
func (s *scanner) scanFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	if key := fileKey(fi); key != "" {
		if s.seen[key] {
			return
		}
		s.seen[key] = true
	}
	s.files++
	buf := make([]byte, scanChunk+s.maxLen)
	keep := 0
	var read int64
	for read < scanMaxFileSize && s.bytes < scanMaxBytes {
		n, err := f.Read(buf[keep:])
		read += int64(n)
		s.bytes += int64(n)
		s.scanBytes(path, buf[:keep+n])
		if tail := keep + n; tail > s.maxLen {
			keep = copy(buf, buf[tail-s.maxLen:tail])
		} else {
			keep = tail
		}
		if err != nil {
			return
		}
	}
}

// walk scans every regular file below root, not following symlinks and not
// entering kernel trees, within the scan bounds.
func (s *scanner) walk(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skip, keep walking
		}
		if d.IsDir() && p != root && skipTree(p) {
			return fs.SkipDir
		}
		if s.files >= scanMaxFiles || s.bytes >= scanMaxBytes {
			return fs.SkipAll
		}
		if d.Type().IsRegular() {
			s.scanFile(p)
		}
		return nil
	})
}

func attackSecrets(p *probe, a attack) {
	var want, forbid []secret
	for _, v := range a.params["want"] {
		s, _ := parseSecret(v) // validated by parseAttack
		want = append(want, s)
	}
	for _, v := range a.params["forbid"] {
		s, _ := parseSecret(v)
		forbid = append(forbid, s)
	}
	s := newScanner(append(append([]secret{}, want...), forbid...))
	s.scanBytes("os.Environ", []byte(strings.Join(p.r.env.Environ, "\x00")))
	environs := 0
	ents, _ := os.ReadDir(sandboxPaths.proc)
	for _, e := range ents {
		if e.Name() != "self" && strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		for _, f := range []string{"environ", "cmdline"} {
			path := filepath.Join(sandboxPaths.proc, e.Name(), f)
			if b, err := os.ReadFile(path); err == nil {
				if f == "environ" {
					environs++
				}
				s.scanBytes(path, b)
			}
		}
	}
	mounts, err := readMountInfo()
	if err != nil {
		p.info("cannot read mountinfo: %v", err)
	}
	walked := 0
	roots := []string{sandboxPaths.root}
	for _, m := range mounts {
		roots = append(roots, m.point)
	}
	for _, root := range roots {
		if skipTree(root) {
			continue
		}
		walked++
		s.walk(root)
	}
	for _, n := range forbid {
		if w := s.where[n.label]; len(w) > 0 {
			p.found("forbidden %s readable in %s", n.label, listed(w))
		} else {
			p.blocked("forbidden %s not found in any environment or mounted file", n.label)
		}
	}
	for _, n := range want {
		if w := s.where[n.label]; len(w) > 0 {
			p.info("allowed %s visible in %s", n.label, listed(w))
		} else {
			p.info("allowed %s not visible anywhere", n.label)
		}
	}
	p.scanned("files=%d bytes=%d environ=%d mounts=%d", s.files, s.bytes, environs, walked)
}

func listed(w []string) string {
	if len(w) > 8 {
		return strings.Join(w[:8], ", ") + fmt.Sprintf(" and %d more", len(w)-8)
	}
	return strings.Join(w, ", ")
}

func attackNeighbor(p *probe, a attack) {
	victim, marker := a.str("victim"), a.str("marker")
	ws := p.r.env.Dir
	var cands []string
	if b, err := os.ReadFile(filepath.Join(ws, ".git")); err == nil {
		gd := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "gitdir:"))
		if i := strings.Index(gd, "/.git/worktrees/"); i > 0 {
			repo := gd[:i]
			p.info("the .git pointer names the host checkout %s", repo)
			cands = append(cands, filepath.Join(repo, ".trakkar-worktrees", victim), repo,
				filepath.Join(repo, ".git"), filepath.Join(repo, ".git", "hooks"))
		}
	}
	if mounts, err := readMountInfo(); err == nil {
		for _, m := range mounts {
			if m.point == ws {
				p.info("mountinfo says the workspace is %s on %s", m.root, m.source)
				cands = append(cands, filepath.Join(filepath.Dir(m.root), victim))
			}
		}
	}
	cands = append(cands, filepath.Join(ws, "..", victim), filepath.Join(ws, "..", "..", ".trakkar-worktrees", victim),
		filepath.Join(ws, ".."), filepath.Join(ws, "..", ".."))
	entries := 0
	_ = filepath.WalkDir(sandboxPaths.root, func(path string, d fs.DirEntry, err error) error {
		entries++
		if entries > 50000 {
			return fs.SkipAll
		}
		if err != nil {
			return nil
		}
		if d.IsDir() && path != sandboxPaths.root && (skipTree(path) || path == ws) {
			return fs.SkipDir
		}
		if d.IsDir() && d.Name() == victim {
			cands = append(cands, path)
		}
		return nil
	})
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c] {
			continue
		}
		seen[c] = true
		err := os.WriteFile(filepath.Join(c, marker), []byte("written by a hostile neighbour\n"), 0o644)
		p.outcome(err, "write "+marker+" into "+c)
	}
}

func attackStateSymlink(p *probe, a attack) {
	target, marker, sentinel := a.str("target"), a.str("marker"), a.str("sentinel")
	cursor := sandboxPaths.cursor
	if _, err := os.Stat(filepath.Join(cursor, sentinel)); err == nil {
		p.found("the host directory %s is mounted at %s (its %s is readable)", target, cursor, sentinel)
		err := os.WriteFile(filepath.Join(cursor, marker), []byte("written by a hostile agent\n"), 0o644)
		p.outcome(err, "write "+marker+" into the host directory through "+cursor)
	} else {
		p.blocked("the host directory %s is not visible at %s", target, cursor)
	}
	link := filepath.Join(sandboxPaths.state, "cursor")
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		p.info("%s is still the symlink planted earlier", link)
		return
	}
	if err := os.RemoveAll(link); err != nil {
		p.info("cannot remove %s: %v", link, err)
		return
	}
	if err := os.Symlink(target, link); err != nil {
		p.info("cannot plant the symlink: %v", err)
		return
	}
	p.planted("%s -> %s, for the next run's mount of the agent state", link, target)
}

func attackMemHog(p *probe, a attack) {
	mb := a.num("mb", 1024)
	const step = 16
	p.info("allocating up to %d MiB", mb)
	var keep [][]byte
	for got := step; got <= mb; got += step {
		b := make([]byte, step<<20)
		for i := 0; i < len(b); i += 4096 { // touch every page so it is really resident
			b[i] = 1
		}
		keep = append(keep, b)
		if got%64 == 0 {
			p.info("holding %d MiB", got)
			if p.err != nil {
				return
			}
		}
	}
	runtime.KeepAlive(keep)
	p.found("allocated and touched %d MiB without being stopped", mb)
}

// firstLine returns the first non-empty line of the file, or "".
func firstLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			return l
		}
	}
	return ""
}

// procStatus returns the named fields of /proc/self/status.
func procStatus(keys ...string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(sandboxPaths.proc, "self", "status"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return out, errors.New("no " + k + " in /proc/self/status")
		}
	}
	return out, nil
}

// processNames returns the command names of every visible process.
func processNames() []string {
	ents, _ := os.ReadDir(sandboxPaths.proc)
	var names []string
	for _, e := range ents {
		if strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(sandboxPaths.proc, e.Name(), "comm")); err == nil {
			names = append(names, strings.TrimSpace(string(b)))
		}
	}
	sort.Strings(names)
	return names
}

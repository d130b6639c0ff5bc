package fakeagent

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The hostile scenario plays a prompt-injected agent: each `fake:attack=` line
// runs one probe against the sandbox from inside the container and reports what
// it saw as assistant text, one line each:
//
//	HOSTILE FOUND <attack>: <what>    containment failed (a test must fail)
//	HOSTILE BLOCKED <attack>: <what>  the probe ran and was stopped
//	HOSTILE PLANTED <attack>: <what>  files the host must not act on are in place
//	HOSTILE INFO <attack>: <what>     an observation
//	HOSTILE SCANNED <attack>: <what>  how much a scan covered
//
// so end-to-end tests can assert both containment and that the probe really ran.
// Lines never carry secret values, only labels.
//
// Attacks and their parameters (`fake:attack=<name> key=value …`):
//
//	git-pointer canary=<dir>    replace /workspace/.git with a pointer to an evil gitdir
//	husky canary=<dir>          canary hooks in .husky/ (for a trusted core.hooksPath=.husky)
//	gitattributes               .gitattributes selecting filter/diff/merge driver "evil" and lfs
//	nested-git canary=<dir>     a nested repository with a commit and an evil config
//	bare-repo canary=<dir>      an embedded bare repository as ordinary files
//	dotgit-alias canary=<dir>   .GIT/config and git~1/config
//	gitmodules                  .gitmodules with a ../ submodule name
//	symlink-abs                 a symlink to /etc/passwd
//	symlink-up                  a symlink to ../../ (the main checkout on the host)
//	big-file kb=<n>             one file of n KiB (default 2048)
//	many-files n=<n>            n new files (default 100)
//	workflow                    .github/workflows/ci.yml
//	secrets want=<label>:<hex> forbid=<label>:<hex>
//	                            scan environments and every mounted file for the
//	                            values (hex of the reversed value, so the job file
//	                            never holds them verbatim)
//	neighbor victim=<folder> marker=<name>
//	                            try to reach another task's worktree and drop a marker
//	state-symlink target=<dir> marker=<name> sentinel=<name>
//	                            swap the agent state dir the runner mounts for a
//	                            symlink to a host dir; on a later run, look for it
//	result-fifo                 leave a FIFO as the worker's result file, unreplaceable
//	forkbomb depth=<n> secs=<n> a bounded fork bomb (default depth 12, 3 s)
//	memhog mb=<n>               allocate and touch n MiB (default 1024)
//	sandbox                     capabilities, seccomp, read-only root, sockets, devices…
//	cache-plant marker=<name>   drop marker into every /trakkar/cache/<tool> folder
//	cache-look marker=<name>    report a marker another container left in a cache folder
//	setuid target=<path>        leave setuid/setgid, sticky and world-writable files (and a
//	                            FIFO and a symlink to target) in every host folder the
//	                            container writes; the task's first run then chmods
//	                            /trakkar/out to 0555
//	forge-events                write forged worker event lines into every other
//	                            process's stdout/stderr it can open via /proc
//	stderr-flood mb=<n>         n MiB to stderr (default 50), then a tool call

// attack is one `fake:attack=` directive.
type attack struct {
	name   string
	params map[string][]string
}

// attackParams lists the parameters each attack takes; required ones end in "!".
var attackParams = map[string][]string{
	"git-pointer":   {"canary!"},
	"husky":         {"canary!"},
	"gitattributes": nil,
	"nested-git":    {"canary!"},
	"bare-repo":     {"canary!"},
	"dotgit-alias":  {"canary!"},
	"gitmodules":    nil,
	"symlink-abs":   nil,
	"symlink-up":    nil,
	"big-file":      {"kb"},
	"many-files":    {"n"},
	"workflow":      nil,
	"secrets":       {"want", "forbid"},
	"neighbor":      {"victim!", "marker!"},
	"state-symlink": {"target!", "marker!", "sentinel!"},
	"result-fifo":   nil,
	"forkbomb":      {"depth", "secs"},
	"memhog":        {"mb"},
	"sandbox":       nil,
	"cache-plant":   {"marker!"},
	"cache-look":    {"marker!"},
	"setuid":        {"target"},
	"forge-events":  nil,
	"stderr-flood":  {"mb"},
}

// Parameters holding absolute host paths, numbers, secrets and plain names.
var (
	pathParams   = map[string]bool{"canary": true, "target": true}
	numParams    = map[string]bool{"kb": true, "n": true, "depth": true, "secs": true, "mb": true}
	secretParams = map[string]bool{"want": true, "forbid": true}
)

func parseAttack(val string) (attack, error) {
	fields := strings.Fields(val)
	if len(fields) == 0 {
		return attack{}, fmt.Errorf("fake:attack needs a name, one of %s", strings.Join(attackNames(), ", "))
	}
	a := attack{name: fields[0], params: map[string][]string{}}
	allowed, ok := attackParams[a.name]
	if !ok {
		return a, fmt.Errorf("unknown attack %q, want one of %s", a.name, strings.Join(attackNames(), ", "))
	}
	known := map[string]bool{}
	for _, p := range allowed {
		known[strings.TrimSuffix(p, "!")] = true
	}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" {
			return a, fmt.Errorf("attack %s: parameter %q is not key=value", a.name, f)
		}
		if !known[k] {
			return a, fmt.Errorf("attack %s: unknown parameter %q", a.name, k)
		}
		if err := checkParam(k, v); err != nil {
			return a, fmt.Errorf("attack %s: %w", a.name, err)
		}
		a.params[k] = append(a.params[k], v)
	}
	for _, p := range allowed {
		if k, req := strings.CutSuffix(p, "!"); req && len(a.params[k]) == 0 {
			return a, fmt.Errorf("attack %s needs %s=…", a.name, k)
		}
	}
	return a, nil
}

func checkParam(k, v string) error {
	switch {
	case pathParams[k]:
		if !filepath.IsAbs(v) {
			return fmt.Errorf("%s=%q must be an absolute path", k, v)
		}
	case numParams[k]:
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			return fmt.Errorf("%s needs a positive number, got %q", k, v)
		}
	case secretParams[k]:
		if _, err := parseSecret(v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	default:
		if strings.ContainsAny(v, `/\`) || v == "." || v == ".." {
			return fmt.Errorf("%s=%q must be a plain name", k, v)
		}
	}
	return nil
}

func attackNames() []string {
	names := make([]string, 0, len(attackParams))
	for n := range attackParams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a attack) str(k string) string {
	if v := a.params[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (a attack) num(k string, def int) int {
	if n, err := strconv.Atoi(a.str(k)); err == nil {
		return n
	}
	return def
}

// secret is a labelled value to look for.
type secret struct {
	label string
	value []byte
}

// parseSecret decodes "<label>:<hex of the reversed value>".
func parseSecret(v string) (secret, error) {
	label, h, ok := strings.Cut(v, ":")
	if !ok || label == "" || h == "" {
		return secret{}, fmt.Errorf("want <label>:<hex>, got %q", v)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 4 {
		return secret{}, fmt.Errorf("secret %s: want the hex of at least 4 bytes", label)
	}
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return secret{label: label, value: b}, nil
}

// EncodeSecret is the form `secrets want=`/`forbid=` take: label, then the hex of
// the reversed value, so the prompt (and the job file the container can read)
// never holds the value itself.
func EncodeSecret(label, value string) string {
	b := []byte(value)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return label + ":" + hex.EncodeToString(b)
}

// probe reports the findings of one attack; after a failed write to stdout (or
// a signal) it goes quiet and err says why.
type probe struct {
	r    *run
	name string
	err  error
}

func (p *probe) say(kind, format string, args ...any) {
	if p.err != nil {
		return
	}
	line := "HOSTILE " + kind + " " + p.name + ": " + oneLineText(fmt.Sprintf(format, args...))
	p.err = p.r.text(p.r.newMessage(), line)
}

func (p *probe) found(format string, args ...any)   { p.say("FOUND", format, args...) }
func (p *probe) blocked(format string, args ...any) { p.say("BLOCKED", format, args...) }
func (p *probe) planted(format string, args ...any) { p.say("PLANTED", format, args...) }
func (p *probe) info(format string, args ...any)    { p.say("INFO", format, args...) }
func (p *probe) scanned(format string, args ...any) { p.say("SCANNED", format, args...) }

// outcome reports err as BLOCKED (the sandbox said no) or success as FOUND.
func (p *probe) outcome(err error, what string) {
	if err != nil {
		p.blocked("%s: %v", what, err)
		return
	}
	p.found("%s succeeded", what)
}

func oneLineText(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// hostile runs every requested attack in order, then the plain writes, and ends
// with a success result so the host goes on to stage, commit and push.
func (r *run) hostile() (map[string]any, int, error) {
	if err := r.text(r.newMessage(), r.intro(fmt.Sprintf("Running %d hostile probes.", len(r.d.attacks)))); err != nil {
		return nil, 0, err
	}
	for _, a := range r.d.attacks {
		p := &probe{r: r, name: a.name}
		hostileAttacks[a.name](p, a)
		if p.err != nil {
			return nil, 0, p.err
		}
	}
	for _, w := range r.d.writes {
		if _, err := r.writeFile(w); err != nil {
			return nil, 0, err
		}
	}
	final := fmt.Sprintf("Hostile probes finished (%d).", len(r.d.attacks))
	if err := r.text(r.newMessage(), final); err != nil {
		return nil, 0, err
	}
	return r.result(false, "success", map[string]any{"result": final}), 0, nil
}

// hostileAttacks maps attack names to their implementations.
var hostileAttacks = map[string]func(*probe, attack){
	"git-pointer":   attackGitPointer,
	"husky":         attackHusky,
	"gitattributes": attackGitattributes,
	"nested-git":    attackNestedGit,
	"bare-repo":     attackBareRepo,
	"dotgit-alias":  attackDotGitAlias,
	"gitmodules":    attackGitmodules,
	"symlink-abs":   attackSymlinkAbs,
	"symlink-up":    attackSymlinkUp,
	"big-file":      attackBigFile,
	"many-files":    attackManyFiles,
	"workflow":      attackWorkflow,
	"secrets":       attackSecrets,
	"neighbor":      attackNeighbor,
	"state-symlink": attackStateSymlink,
	"result-fifo":   attackResultFIFO,
	"forkbomb":      attackForkBomb,
	"memhog":        attackMemHog,
	"sandbox":       attackSandbox,
	"cache-plant":   attackCachePlant,
	"cache-look":    attackCacheLook,
	"setuid":        attackSetuid,
	"forge-events":  attackForgeEvents,
	"stderr-flood":  attackStderrFlood,
}

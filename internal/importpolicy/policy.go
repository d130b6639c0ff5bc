// Package importpolicy decides whether the changes an agent made in its worktree may
// be committed and pushed (docs/security.md §5, rule 5). Everything the agent wrote
// is attacker-controlled, so the policy refuses what could hurt the host, the
// repository's consumers or CI: git metadata under any alias, nested repositories,
// submodule configuration, symlinks leaving the tree, oversized blobs, mass changes
// and protected paths such as workflow files.
package importpolicy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// Defaults used for zero Options fields.
const (
	DefaultMaxFileBytes int64 = 20 << 20
	DefaultMaxFiles           = 2000
)

// DefaultProtected returns the protected patterns used when Options.Protected is nil.
// They name what runs code on CI or on a reviewer's machine: GitHub workflows and
// actions (and dependabot, CODEOWNERS), GitLab CI, dev containers, VS Code tasks,
// direnv and husky hooks.
func DefaultProtected() []string {
	return []string{
		".github/workflows/**",
		".github/**",
		".gitlab-ci.yml",
		".devcontainer/**",
		".vscode/tasks.json",
		".envrc",
		".husky/**",
	}
}

// Rules a Violation can name.
const (
	RuleDotGit        = "dotgit"         // a path component aliases .git
	RuleGitlink       = "gitlink"        // a nested repository (mode 160000)
	RuleGitmodules    = "gitmodules"     // .gitmodules (or an alias) added, modified or deleted
	RuleSymlinkEscape = "symlink-escape" // a symlink whose target is absolute, leaves the tree or enters .git
	RuleTooLarge      = "too-large"      // a blob bigger than MaxFileBytes
	RuleTooMany       = "too-many"       // more than MaxFiles changed paths (one violation, Path "")
	RuleProtected     = "protected"      // a path matching a protected pattern
	RuleInvalidPath   = "invalid-path"   // empty, absolute, or with "", "." or ".." components
	RuleNotStaged     = "not-staged"     // git refused to stage the path (hostgit.StatusNotStaged)
	RuleUnexpected    = "unexpected"     // a change status or mode git does not produce for a clean import
	RuleBareRepo      = "bare-repo"      // a folder laid out as a bare repository (HEAD plus objects/ or refs/)
)

// Options tunes Check. Zero values mean the defaults.
type Options struct {
	// MaxFileBytes is the largest blob accepted; <= 0 means DefaultMaxFileBytes.
	MaxFileBytes int64
	// MaxFiles is the most distinct changed paths accepted; <= 0 means DefaultMaxFiles.
	MaxFiles int
	// Protected lists path patterns anchored at the repository root: components are
	// path.Match patterns, "**" matches zero or more components, letters match
	// ASCII case-insensitively. nil means DefaultProtected(); an empty non-nil slice
	// protects nothing. A malformed pattern protects every path (fail closed).
	Protected []string
	// AllowProtected turns the protected rule off.
	AllowProtected bool
}

// Violation is one refused path (Path is "" for RuleTooMany).
type Violation struct {
	Path   string
	Rule   string
	Detail string // human-readable reason
}

// Report is the outcome of Check. It is an error describing every refused path.
type Report struct {
	Violations []Violation
}

// Err returns nil when nothing was refused and the Report otherwise.
func (r Report) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	return r
}

const maxListed = 10

// Error is one line: "refused 2 paths: .GIT/config (git metadata), sub (nested
// repository)". Paths are quoted when they hold non-printable characters and the
// list is cut after a few entries.
func (r Report) Error() string {
	if len(r.Violations) == 0 {
		return "import policy: nothing refused"
	}
	var order []string
	reasons := map[string][]string{}
	var tooMany string
	for _, v := range r.Violations {
		if v.Rule == RuleTooMany {
			tooMany = v.Detail
			continue
		}
		if _, ok := reasons[v.Path]; !ok {
			order = append(order, v.Path)
		}
		reasons[v.Path] = append(reasons[v.Path], v.Detail)
	}
	var b strings.Builder
	if len(order) > 0 {
		fmt.Fprintf(&b, "refused %d path", len(order))
		if len(order) != 1 {
			b.WriteByte('s')
		}
		b.WriteString(": ")
		for i, p := range order {
			if i == maxListed {
				fmt.Fprintf(&b, ", and %d more", len(order)-maxListed)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s (%s)", display(p), strings.Join(reasons[p], "; "))
		}
	}
	if tooMany != "" {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString("refused the import: " + tooMany)
	}
	return b.String()
}

// Check applies every rule to changes (as returned by hostgit's StageAll or
// ChangesSince) and reports all violations, in input order, with RuleTooMany last.
func Check(changes []hostgit.Change, opts Options) Report {
	maxBytes := opts.MaxFileBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFileBytes
	}
	maxFiles := opts.MaxFiles
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	var globs []glob
	var badPatterns []string
	if !opts.AllowProtected {
		patterns := opts.Protected
		if patterns == nil {
			patterns = DefaultProtected()
		}
		for _, p := range patterns {
			g, err := compileGlob(p)
			if err != nil {
				badPatterns = append(badPatterns, p)
				continue
			}
			globs = append(globs, g)
		}
	}
	var r Report
	paths := make(map[string]struct{}, len(changes))
	for _, c := range changes {
		paths[c.Path] = struct{}{}
		r.Violations = append(r.Violations, checkChange(c, maxBytes, globs, badPatterns)...)
	}
	r.Violations = append(r.Violations, bareRepos(changes)...)
	if len(paths) > maxFiles {
		r.Violations = append(r.Violations, Violation{Rule: RuleTooMany,
			Detail: fmt.Sprintf("%d changed paths, limit %d", len(paths), maxFiles)})
	}
	return r
}

func checkChange(c hostgit.Change, maxBytes int64, globs []glob, badPatterns []string) []Violation {
	var out []Violation
	add := func(rule, detail string) {
		out = append(out, Violation{Path: c.Path, Rule: rule, Detail: detail})
	}
	// A directory git refused to stage is listed with a trailing slash.
	p := c.Path
	if c.Status == hostgit.StatusNotStaged {
		p = strings.TrimSuffix(p, "/")
	}
	comps := splitPath(p)
	if detail := invalidPath(p, comps); detail != "" {
		add(RuleInvalidPath, detail)
	}
	for _, comp := range comps {
		if isDotGit(comp) {
			add(RuleDotGit, "git metadata")
			break
		}
	}
	for _, comp := range comps {
		if isDotGitmodules(comp) {
			add(RuleGitmodules, "submodule configuration")
			break
		}
	}
	switch c.Mode {
	case hostgit.ModeGitlink:
		add(RuleGitlink, "nested repository (gitlink)")
	case hostgit.ModeSymlink:
		if detail := symlinkEscape(comps, c.LinkTarget); detail != "" {
			add(RuleSymlinkEscape, detail)
		}
	}
	if c.Size > maxBytes {
		add(RuleTooLarge, fmt.Sprintf("%d bytes, limit %d", c.Size, maxBytes))
	}
	if len(badPatterns) > 0 {
		add(RuleProtected, fmt.Sprintf("malformed protected pattern %q", badPatterns[0]))
	} else if len(globs) > 0 {
		// Compared as a Windows or macOS checkout would open them: ".vscode./tasks.json"
		// is .vscode/tasks.json there.
		folded := make([]string, len(comps))
		for i, comp := range comps {
			folded[i] = fold(canonicalName(comp))
		}
		if g, ok := protectedBy(globs, folded, c.Mode == hostgit.ModeSymlink); ok {
			add(RuleProtected, g)
		}
	}
	switch c.Status {
	case "A", "M", "D", "T":
	case hostgit.StatusNotStaged:
		if len(out) == 0 {
			add(RuleNotStaged, "git refused to stage it")
		}
	default:
		add(RuleUnexpected, fmt.Sprintf("unexpected change status %q", c.Status))
	}
	switch c.Mode {
	case "", hostgit.ModeFile, hostgit.ModeExec, hostgit.ModeSymlink, hostgit.ModeGitlink:
	default:
		add(RuleUnexpected, fmt.Sprintf("unexpected mode %q", c.Mode))
	}
	return out
}

// protectedBy returns why a path (folded components) is protected: a pattern
// matches it, or, for a symlink, it is an ancestor of paths a pattern matches.
// A pattern matching the path itself is named first.
func protectedBy(globs []glob, folded []string, symlink bool) (string, bool) {
	for _, g := range globs {
		if g.match(folded) {
			return "protected by " + g.src, true
		}
	}
	if symlink {
		for _, g := range globs {
			if g.matchBelow(folded) {
				return "symlink at a parent of paths protected by " + g.src, true
			}
		}
	}
	return "", false
}

// invalidPath describes why p is not a path git would record, or returns "".
func invalidPath(p string, comps []string) string {
	switch {
	case p == "":
		return "empty path"
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`):
		return "absolute path"
	case strings.ContainsRune(p, 0):
		return "path contains NUL"
	case strings.Contains(p, "//") || strings.HasSuffix(p, "/"):
		return "empty path component"
	}
	for _, c := range comps {
		if c == "." || c == ".." {
			return fmt.Sprintf("%q path component", c)
		}
	}
	return ""
}

// symlinkEscape returns why a symlink at linkComps with the given target is refused,
// or "". Lexical cleaning alone is not enough: in "a -> b/../x" the component b may
// itself be a symlink, so ".." is accepted only at the start of the target, where it
// walks up the link's own directories (which git guarantees are real directories).
func symlinkEscape(linkComps []string, target string) string {
	switch {
	case target == "":
		return "symlink with an empty or unread target"
	case strings.ContainsRune(target, 0):
		return "symlink target contains NUL"
	}
	t := strings.ReplaceAll(target, `\`, "/") // a Windows checkout reads both
	if strings.HasPrefix(t, "/") || len(t) >= 2 && t[1] == ':' && isASCIILetter(t[0]) {
		return fmt.Sprintf("symlink to absolute path %s", display(target))
	}
	depth := len(linkComps) - 1 // directories above the link
	if depth < 0 {
		depth = 0
	}
	ups := 0
	var rest []string
	for _, c := range strings.Split(t, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(rest) > 0 {
				return fmt.Sprintf("symlink target %s has '..' after a directory name", display(target))
			}
			ups++
		default:
			rest = append(rest, c)
		}
	}
	if ups > depth {
		return fmt.Sprintf("symlink to %s leaves the tree", display(target))
	}
	for _, c := range append(append([]string{}, linkComps[:depth-ups]...), rest...) {
		if isDotGit(c) {
			return fmt.Sprintf("symlink to %s points into git metadata", display(target))
		}
	}
	return ""
}

func isASCIILetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

const maxDisplay = 200

// display makes an attacker-chosen name safe for a one-line message: quoted when it
// holds anything but printable characters (or starts or ends with a space, as in
// ".git "), and shortened.
func display(s string) string {
	short, cut := s, false
	if len(short) > maxDisplay {
		short, cut = short[:maxDisplay], true
	}
	plain := utf8.ValidString(short) && short != "" &&
		!strings.HasPrefix(short, " ") && !strings.HasSuffix(short, " ") &&
		!strings.ContainsFunc(short, func(r rune) bool { return !unicode.IsPrint(r) || r == '"' })
	if !plain {
		short = strconv.Quote(short)
	}
	if cut {
		short += "…"
	}
	return short
}

// bareRepos refuses folders that a git client would take for a bare
// repository: git honours an embedded bare repository when someone runs git
// inside it, and its config can name programs (see docs/security.md §1.4).
func bareRepos(changes []hostgit.Change) []Violation {
	type marks struct{ head, store bool }
	dirs := map[string]*marks{}
	mark := func(dir string) *marks {
		m := dirs[dir]
		if m == nil {
			m = &marks{}
			dirs[dir] = m
		}
		return m
	}
	for _, c := range changes {
		if c.Status == "D" {
			continue
		}
		p := strings.ReplaceAll(c.Path, "\\", "/")
		parts := strings.Split(p, "/")
		for i, part := range parts {
			dir := strings.Join(parts[:i], "/")
			switch {
			case i == len(parts)-1 && strings.EqualFold(part, "HEAD"):
				mark(dir).head = true
			case i < len(parts)-1 && (strings.EqualFold(part, "objects") || strings.EqualFold(part, "refs")):
				mark(dir).store = true
			}
		}
	}
	var out []Violation
	for dir, m := range dirs {
		if m.head && m.store {
			name := dir
			if name == "" {
				name = "."
			}
			out = append(out, Violation{Path: name, Rule: RuleBareRepo, Detail: "laid out as a bare git repository"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

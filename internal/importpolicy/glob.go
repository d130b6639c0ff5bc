package importpolicy

import (
	"fmt"
	"path"
	"strings"
)

// glob is a compiled protected-path pattern: slash-separated components, each a
// path.Match pattern or "**" (zero or more whole components). Patterns are anchored
// at the repository root; "**/CODEOWNERS" matches at any depth.
type glob struct {
	src   string
	parts []string
}

func compileGlob(pattern string) (glob, error) {
	p := strings.Trim(pattern, "/")
	if p == "" {
		return glob{}, fmt.Errorf("protected pattern %q is empty", pattern)
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			continue
		}
		if c == "**" && len(parts) > 0 && parts[len(parts)-1] == "**" {
			continue // "**/**" is "**"
		}
		if c != "**" {
			if _, err := path.Match(fold(c), ""); err != nil {
				return glob{}, fmt.Errorf("protected pattern %q: %w", pattern, err)
			}
		}
		parts = append(parts, fold(c))
	}
	return glob{src: pattern, parts: parts}, nil
}

// fold lower-cases ASCII letters only: protected names are compared the way a
// case-insensitive checkout would see them, without Unicode surprises.
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// match reports whether the components of a path, already passed through fold,
// match the pattern. It is a
// dynamic-programming match, linear in pattern × path length, so a deep hostile path
// cannot make several "**" blow up.
func (g glob) match(components []string) bool {
	n := len(components)
	// next[j] reports whether parts[i+1:] matches components[j:]; cur is for parts[i:].
	next := make([]bool, n+1)
	cur := make([]bool, n+1)
	next[n] = true
	for i := len(g.parts) - 1; i >= 0; i-- {
		p := g.parts[i]
		if p == "**" {
			cur[n] = next[n]
			for j := n - 1; j >= 0; j-- {
				cur[j] = next[j] || cur[j+1]
			}
		} else {
			cur[n] = false
			for j := n - 1; j >= 0; j-- {
				ok, _ := path.Match(p, components[j])
				cur[j] = ok && next[j+1]
			}
		}
		next, cur = cur, next
	}
	return next[0]
}

// matchBelow reports whether some path strictly below components (already passed
// through fold) could match the pattern: components is then an ancestor of a
// protected path, and a symlink there would let the protected path resolve to
// files outside the protected folder (".github -> ci" with ci/workflows/x.yml).
// It tracks the set of pattern positions reachable after each component, so it is
// linear in pattern × path length too.
func (g glob) matchBelow(components []string) bool {
	n := len(g.parts)
	reach := make([]bool, n+1)
	reach[0] = true
	closeStars := func() {
		// "**" matches zero components: reaching it reaches what follows it.
		for i := 0; i < n; i++ {
			if reach[i] && g.parts[i] == "**" {
				reach[i+1] = true
			}
		}
	}
	closeStars()
	next := make([]bool, n+1)
	for _, c := range components {
		clear(next)
		for i := 0; i < n; i++ {
			if !reach[i] {
				continue
			}
			if g.parts[i] == "**" {
				next[i] = true
			} else if ok, _ := path.Match(g.parts[i], c); ok {
				next[i+1] = true
			}
		}
		reach, next = next, reach
		closeStars()
	}
	// Any pattern part left over can still match one more component or more.
	for i := 0; i < n; i++ {
		if reach[i] {
			return true
		}
	}
	return false
}

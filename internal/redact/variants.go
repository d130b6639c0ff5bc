package redact

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"strings"
)

// Variants returns the forms of secret that masking and the change scanner look
// for: verbatim, reversed, hex (both cases), every byte percent-encoded (both
// cases), URL query/path escaping, JSON escaping, base32 and base64 (std and
// URL-safe). Base64 and base32 are given at every byte alignment, as the
// characters that depend on the secret alone, so the secret is found inside a
// longer encoded text too. Secrets shorter than minSecretLen have none.
func Variants(secret string) []string {
	if len(secret) < minSecretLen {
		return nil
	}
	b := []byte(secret)
	hx := hex.EncodeToString(b)
	out := []string{
		secret,
		reversed(secret),
		hx, strings.ToUpper(hx),
		percentEvery(b, "0123456789ABCDEF"), percentEvery(b, "0123456789abcdef"),
		url.QueryEscape(secret), url.PathEscape(secret),
	}
	out = append(out, jsonEscaped(secret)...)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out = append(out, enc.EncodeToString(b))
		out = append(out, aligned(b, enc.WithPadding(base64.NoPadding).EncodeToString, 3, 6)...)
	}
	b32 := base32.StdEncoding
	out = append(out, b32.EncodeToString(b), strings.ToLower(b32.EncodeToString(b)))
	for _, v := range aligned(b, b32.WithPadding(base32.NoPadding).EncodeToString, 5, 5) {
		out = append(out, v, strings.ToLower(v))
	}
	seen := make(map[string]bool, len(out))
	uniq := out[:0]
	for _, v := range out {
		if len(v) >= minSecretLen && !seen[v] {
			seen[v] = true
			uniq = append(uniq, v)
		}
	}
	return uniq
}

// aligned encodes b at each of the block's byte offsets and keeps only the
// characters fully determined by b: the partial first and last characters
// depend on the unknown bytes around it in a longer text.
func aligned(b []byte, encode func([]byte) string, block, bits int) []string {
	var out []string
	for off := 0; off < block; off++ {
		enc := encode(append(make([]byte, off), b...))
		start := (8*off + bits - 1) / bits
		end := 8 * (off + len(b)) / bits
		if end > start {
			out = append(out, enc[start:end])
		}
	}
	return out
}

func reversed(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

func percentEvery(b []byte, digits string) string {
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '%', digits[c>>4], digits[c&15])
	}
	return string(out)
}

// jsonEscaped is the secret as it appears inside a JSON string, with and
// without HTML escaping.
func jsonEscaped(s string) []string {
	var out []string
	if b, err := json.Marshal(s); err == nil {
		out = append(out, strings.Trim(string(b), `"`))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		out = append(out, strings.Trim(strings.TrimSpace(buf.String()), `"`))
	}
	return out
}

// scanChunk is how much of a reader ReaderContains examines at a time.
const scanChunk = 1 << 20

// ReaderContains reports whether the text read from rd holds a known secret in
// any form Contains finds. It reads in chunks that overlap by the longest
// needle, so memory stays bounded and no secret hides across a boundary; a
// gzip+base64 run is found when it fits in one chunk.
func (r *Redactor) ReaderContains(rd io.Reader) (bool, error) {
	if r.Empty() {
		return false, nil
	}
	longest := len(r.needles[0]) // needles are sorted longest first
	buf := make([]byte, 0, scanChunk+longest)
	for {
		n, err := io.ReadFull(rd, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if r.Contains(string(buf)) {
			return true, nil
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return false, nil
		case err != nil:
			return false, err
		}
		keep := min(len(buf), longest-1)
		buf = append(buf[:0], buf[len(buf)-keep:]...)
	}
}

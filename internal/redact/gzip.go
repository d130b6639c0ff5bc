package redact

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"strings"
)

// Bounds on the work one gzip+base64 run may cost: an agent controls the text.
const (
	maxGzipRun      = 4 << 20  // base64 characters decoded per run
	maxGunzip       = 4 << 20  // bytes decompressed per run
	maxGunzipTotal  = 32 << 20 // bytes decompressed per top-level call, all runs and depths
	maxGzipDepth    = 2        // gzip inside gzip, each base64-encoded
	gzipBase64Magic = "H4sI"   // base64 of gzip's 1f 8b 08 header, at a 3-byte boundary
)

// gzipRuns returns the [start, end) spans of base64 runs in s that decode to
// gzip data which decompresses to text holding a secret in any encoding.
// budget is what may still be decompressed; once it is spent, every further
// gzip run counts as holding a secret (text built to exhaust it is not
// trusted).
func (r *Redactor) gzipRuns(s string, depth int, budget *int) [][2]int {
	var spans [][2]int
	for from := 0; ; {
		i := strings.Index(s[from:], gzipBase64Magic)
		if i < 0 {
			return spans
		}
		start := from + i
		end := start
		for end < len(s) && isBase64Char(s[end]) {
			end++
		}
		for end < len(s) && s[end] == '=' {
			end++
		}
		if r.gzipHolds(s[start:end], depth, budget) {
			spans = append(spans, [2]int{start, end})
		}
		from = end
	}
}

// gzipHolds decodes a base64 run (std or URL alphabet, padded or not), and
// reports whether its gzip content holds a secret.
func (r *Redactor) gzipHolds(run string, depth int, budget *int) bool {
	if depth >= maxGzipDepth {
		return false
	}
	if *budget <= 0 {
		return true
	}
	run = strings.TrimRight(run, "=")
	if len(run) > maxGzipRun {
		run = run[:maxGzipRun]
	}
	if len(run)%4 == 1 {
		run = run[:len(run)-1]
	}
	run = strings.NewReplacer("-", "+", "_", "/").Replace(run)
	raw, err := base64.RawStdEncoding.DecodeString(run)
	if err != nil || len(raw) < 18 {
		return false
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return false
	}
	// A truncated or corrupt stream still yields what came before the damage.
	plain, _ := io.ReadAll(io.LimitReader(zr, int64(min(maxGunzip, *budget))))
	*budget -= len(plain)
	return r.contains(string(plain), depth+1, budget)
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_'
}

package worker

import (
	"strings"
	"unicode/utf8"
)

// maxText bounds every event text so one runaway block cannot flood the stream.
const maxText = 4000

// maxSummary bounds the result summary; it may end up in a PR description.
const maxSummary = 20000

// cleanText removes terminal control sequences and control characters (keeping
// newlines and tabs) so nothing the agent prints can drive the viewer's terminal,
// then caps the length at limit runes.
func cleanText(s string, limit int) string {
	return truncate(stripControl(s), limit)
}

// stripControl drops ANSI CSI/OSC/other escape sequences, C0 controls other than
// \n and \t, DEL and C1 controls, and repairs invalid UTF-8.
func stripControl(s string) string {
	if !needsCleaning(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x1b: // ESC
			i += size
			i = skipEscape(s, i)
			continue
		case r == 0x9b: // 8-bit CSI
			i += size
			i = skipCSI(s, i)
			continue
		case r == 0x9d: // 8-bit OSC
			i += size
			i = skipOSC(s, i)
			continue
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			// dropped
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsCleaning(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// skipEscape skips the rest of an escape sequence whose ESC ended just before i.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: string until BEL or ST
		return skipOSC(s, i+1)
	}
	// Two-character sequence (ESC c, ESC 7, ...); intermediates 0x20-0x2f may precede the final byte.
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] < 0x80 {
		i++
	}
	return i
}

// skipCSI skips parameter and intermediate bytes up to and including the final
// byte; a byte that cannot belong to the sequence ends it without being consumed.
func skipCSI(s string, i int) int {
	for i < len(s) {
		c := s[i]
		switch {
		case c >= 0x40 && c <= 0x7e:
			return i + 1
		case c >= 0x20 && c <= 0x3f:
			i++
		default:
			return i
		}
	}
	return i
}

// skipOSC skips a control string up to BEL or ST (ESC \).
func skipOSC(s string, i int) int {
	for i < len(s) {
		if s[i] == 0x07 {
			return i + 1
		}
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
			return i + 2
		}
		i++
	}
	return i
}

// truncate caps s at limit runes, marking the cut with an ellipsis.
func truncate(s string, limit int) string {
	if limit <= 0 || utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// firstLine returns the first non-blank line of s, trimmed and cleaned, capped at limit runes.
func firstLine(s string, limit int) string {
	s = stripControl(s)
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return truncate(l, limit)
		}
	}
	return ""
}

// oneLine collapses whitespace runs (including newlines) to single spaces.
func oneLine(s string, limit int) string {
	return truncate(strings.Join(strings.Fields(stripControl(s)), " "), limit)
}

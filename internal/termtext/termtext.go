// Package termtext makes text safe to show on a terminal: it drops what a
// terminal would interpret rather than print.
package termtext

import (
	"strings"
	"unicode/utf8"
)

// Strip removes what a terminal would interpret rather than print, so agent
// output shown to a person (or pasted into one's terminal) cannot move the cursor,
// rewrite earlier lines, set the window title, plant OSC 8 links or send device
// queries: ANSI escape sequences (CSI, OSC, DCS, SOS, PM, APC and two-byte escapes),
// their 8-bit C1 forms, and every other C0/C1 control and DEL except '\n' and '\t'.
// Every '\r' is dropped, so "\r\n" becomes "\n" and a lone '\r' (progress-bar
// overwrite) becomes nothing. Printable text, including multi-byte UTF-8, is kept;
// invalid bytes outside 0x80–0x9F become U+FFFD, so the result is valid UTF-8. A
// string sequence (OSC, DCS…) with no terminator runs to the end of s, as it would on
// a terminal.
func Strip(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0x1b:
				i = skipEscape(s, i+1)
			case c == '\n' || c == '\t':
				b.WriteByte(c)
				i++
			case c < 0x20 || c == 0x7f:
				i++
			default:
				b.WriteByte(c)
				i++
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1 && c <= 0x9f:
			// A raw 8-bit C1 control byte (invalid as UTF-8, but a terminal in 8-bit
			// mode acts on it).
			i = skipC1(s, i+1, rune(c))
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
			i++
		case r >= 0x80 && r <= 0x9f:
			i = skipC1(s, i+size, r)
		default:
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	return b.String()
}

// skipEscape returns the index after the escape sequence whose ESC is at i-1. A bare
// ESC (at the end, or before a byte that cannot continue a sequence) is dropped alone.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	c := s[i]
	switch {
	case c == '[':
		return skipCSI(s, i+1)
	case c == ']':
		return skipString(s, i+1, true)
	case c == 'P' || c == 'X' || c == '^' || c == '_': // DCS, SOS, PM, APC
		return skipString(s, i+1, false)
	case c >= 0x20 && c <= 0x2f: // intermediates, e.g. ESC ( B
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
			i++
		}
		if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
			i++
		}
		return i
	case c >= 0x30 && c <= 0x7e: // two-byte escapes: ESC 7, ESC c, ESC M…
		return i + 1
	}
	return i
}

// skipC1 returns the index after the sequence introduced by C1 control r, whose
// encoding ends at i.
func skipC1(s string, i int, r rune) int {
	switch r {
	case 0x9b: // CSI
		return skipCSI(s, i)
	case 0x9d: // OSC
		return skipString(s, i, true)
	case 0x90, 0x98, 0x9e, 0x9f: // DCS, SOS, PM, APC
		return skipString(s, i, false)
	}
	return i
}

// skipCSI skips parameter bytes, intermediate bytes and the final byte of a control
// sequence. A malformed sequence ends at the first byte that does not fit; that byte
// is then handled as ordinary input.
func skipCSI(s string, i int) int {
	for i < len(s) && s[i] >= 0x30 && s[i] <= 0x3f {
		i++
	}
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipString skips a control string up to and including its terminator: ST (ESC \,
// 8-bit 0x9C or U+009C), BEL when bel is set (OSC), or CAN/SUB, which abort it. Any
// other ESC ends the string and starts a new sequence.
func skipString(s string, i int, bel bool) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			r = rune(s[i]) // a raw byte, possibly the 8-bit ST 0x9C
		}
		switch {
		case r == 0x07 && bel, r == 0x18, r == 0x1a, r == 0x9c:
			return i + size
		case r == 0x1b:
			if i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			return i
		}
		i += size
	}
	return i
}

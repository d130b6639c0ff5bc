package termtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStrip(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"plain", "hello, wörld ✓ 日本\n\tend", "hello, wörld ✓ 日本\n\tend"},
		{"empty", "", ""},
		{"sgr colors", "\x1b[31mred\x1b[0m plain \x1b[1;38;5;208mX\x1b[m", "red plain X"},
		{"truecolor", "\x1b[38;2;255;0;0mR\x1b[49m", "R"},
		{"cursor moves", "a\x1b[2Ab\x1b[10;20Hc\x1b[Kd\x1b[?25l\x1b[2J", "abcd"},
		{"csi intermediate", "\x1b[1 qx", "x"},
		{"csi malformed", "\x1b[31\x01x", "x"},
		{"csi unterminated", "x\x1b[12;", "x"},
		{"osc 8 hyperlink", "see \x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\ done", "see click here done"},
		{"osc title bel", "\x1b]0;pwned title\x07after", "after"},
		{"osc title st", "\x1b]2;title\x1b\\after", "after"},
		{"osc 8-bit st", "\x1b]0;t\x9cafter", "after"},
		{"osc c1 st", "\x1b]0;t\u009cafter", "after"},
		{"osc with utf8 inside", "\x1b]0;Ĝ✜ title\x07ok", "ok"},
		{"osc clipboard", "\x1b]52;c;ZWNobyBoaQ==\x07x", "x"},
		{"osc aborted by can", "\x1b]0;t\x18after", "after"},
		{"osc ended by escape", "\x1b]0;t\x1b[31mred", "red"},
		{"osc unterminated", "x\x1b]0;never ends\nmore", "x"},
		{"dcs", "\x1bPq#0;2;0;0;0#0~~\x1b\\text", "text"},
		{"dcs request", "\x1bP$qm\x1b\\ok", "ok"},
		{"apc pm sos", "\x1b_x\x1b\\a\x1b^y\x1b\\b\x1bXz\x1b\\c", "abc"},
		{"bare esc at end", "abc\x1b", "abc"},
		{"bare esc before newline", "a\x1b\nb", "a\nb"},
		{"bare esc before utf8", "a\x1bé", "aé"},
		{"double esc", "\x1b\x1b[31mx", "x"},
		{"two-byte escapes", "\x1b7save\x1b8\x1bc\x1bMx\x1b=y", "savexy"},
		{"charset designation", "\x1b(Bx\x1b)0y\x1b%Gz", "xyz"},
		{"c1 raw csi", "a\x9b31mb", "ab"},
		{"c1 utf8 csi", "a\u009b2Jb", "ab"},
		{"c1 raw osc", "\x9d0;title\x07x", "x"},
		{"c1 utf8 dcs", "\u0090q\u009cx", "x"},
		{"c1 other", "a\u0085b\u0084c\x85d", "abcd"},
		{"crlf", "a\r\nb\r\n", "a\nb\n"},
		{"lone cr", "50%\r60%\r100%\n", "50%60%100%\n"},
		{"only cr", "\r", ""},
		{"cr cr lf", "a\r\r\nb", "a\nb"},
		{"c0 controls", "a\x00b\x07c\x08d\x0be\x0cf\x7fg\x05h", "abcdefgh"},
		{"invalid utf8", "a\xffb\xc3", "a\uFFFDb\uFFFD"},
		{"utf8 with 0x9c continuation", "Ĝ✜œ", "Ĝ✜œ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := Strip(c.in); got != c.want {
				t.Fatalf("Strip(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// FuzzStrip: the output is valid UTF-8 with no control character other than
// '\n' and '\t', and stripping again changes nothing.
func FuzzStrip(f *testing.F) {
	for _, s := range []string{"\x1b[31mred\x1b[0m", "\x1b]8;;http://x\x07l\x1b]8;;\x07", "\x9b1m\r\n", "a\xffb", "\x1bP\x1b\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Strip(in)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q: %q", in, out)
		}
		for _, r := range out {
			if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) {
				t.Fatalf("control %U survived in %q (from %q)", r, out, in)
			}
		}
		if again := Strip(out); again != out {
			t.Fatalf("not idempotent: %q -> %q", out, again)
		}
		if strings.Count(out, "\n") > strings.Count(in, "\n") {
			t.Fatalf("newlines invented: %q -> %q", in, out)
		}
	})
}

package supervisor

import (
	"strings"
	"testing"
)

// The engine's json-file driver splits a line over 16 KiB into partial
// messages, and with timestamps on it writes each partial's stamp into the
// middle of the line. A secret across that split reached masking in two halves
// with a timestamp between them.
func TestSplitStampJoinsPartialMessages(t *testing.T) {
	t.Parallel()
	const key = "sk-ant-api03-Zx9_Qm7Lr2Vt5wKp8yHn3cDf6gJs1aBe4uMo0iXq-AAAA"
	content := `{"type":"message","text":"` + strings.Repeat("a", dockerPartialSize-40) + key + strings.Repeat("b", dockerPartialSize) + `"}`
	stamps := []string{"2026-12-03T13:15:45.527580312Z ", "2026-12-03T13:15:45.5275804Z ", "2026-12-03T13:15:45.53Z "}
	var line strings.Builder
	rest := content
	for i := 0; len(rest) > 0; i++ {
		line.WriteString(stamps[i%len(stamps)])
		n := min(len(rest), dockerPartialSize)
		line.WriteString(rest[:n])
		rest = rest[n:]
	}
	cases := []struct {
		name, in, want string
	}{
		{"partials", line.String(), content},
		{"short", stamps[0] + "hello", "hello"},
		{"exactly one partial", stamps[0] + strings.Repeat("c", dockerPartialSize), strings.Repeat("c", dockerPartialSize)},
		// Text that merely looks like a stamp elsewhere is the agent's own.
		{"stamp-like text", stamps[0] + "x " + stamps[1] + "y", "x " + stamps[1] + "y"},
	}
	for _, c := range cases {
		pos, got := splitStamp([]byte(c.in))
		if pos.IsZero() {
			t.Fatalf("%s: no position", c.name)
		}
		if string(got) != c.want {
			t.Fatalf("%s: got %d bytes, want %d; key whole: %v", c.name, len(got), len(c.want), strings.Contains(string(got), key))
		}
	}
}

// A line over maxLine is delivered in pieces, each masked and then cut to the
// event limit from its start: a secret across a piece boundary must reach the
// next piece whole, or its end is shipped unmasked.
func TestLineWriterPiecesKeepSecretsWhole(t *testing.T) {
	t.Parallel()
	const key = "sk-ant-api03-Zx9_Qm7Lr2Vt5wKp8yHn3cDf6gJs1aBe4uMo0iXq-AAAA"
	for _, at := range []int{maxLine - 10, maxLine - len(key) + 1, 2*maxLine - 3000} {
		var pieces []string
		w := newLineWriter(func(b []byte) { pieces = append(pieces, string(b)) })
		_, _ = w.Write([]byte(strings.Repeat("x", at) + key + strings.Repeat("y", maxLine)))
		_, _ = w.Write([]byte("\n"))
		w.Close()
		whole := false
		for _, p := range pieces {
			if len(p) > maxLine {
				t.Fatalf("piece of %d bytes passed the %d cap", len(p), maxLine)
			}
			whole = whole || strings.Contains(p, key)
		}
		if !whole {
			t.Fatalf("key at %d: no piece holds it whole", at)
		}
	}
}

package redact

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const streamSecret = "trk_agent_s3cr3t/value+x"

// streamAll writes chunks to a fresh Stream, closes it and returns the output.
func streamAll(t testing.TB, r *Redactor, chunks ...string) string {
	t.Helper()
	var out bytes.Buffer
	s := r.NewStream(&out)
	for _, c := range chunks {
		if n, err := s.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Every encoded form, split at every byte offset into two writes, is masked exactly
// as the one-shot String does it.
func TestStreamSplitAtEveryOffset(t *testing.T) {
	t.Parallel()
	r := New(streamSecret)
	forms := map[string]string{
		"plain":     streamSecret,
		"base64":    base64.StdEncoding.EncodeToString([]byte(streamSecret)),
		"base64url": base64.RawURLEncoding.EncodeToString([]byte(streamSecret)),
		"query":     url.QueryEscape(streamSecret),
		"path":      url.PathEscape(streamSecret),
		"hex":       fmt.Sprintf("%X", streamSecret),
		"reversed":  reverse(streamSecret),
		"percent":   percentAll(streamSecret, false),
		// The unaligned base64 core is the longest kind of needle per byte.
		"base64off1": base64.StdEncoding.EncodeToString([]byte("x" + streamSecret + "yz")),
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			text := "before " + form + " middle " + form + form + " after\nnext line"
			want := r.String(text)
			if strings.Contains(want, form) || strings.Count(want, Mask) != 3 {
				t.Fatalf("one-shot String did not mask %q: %q", form, want)
			}
			for k := 0; k <= len(text); k++ {
				got := streamAll(t, r, text[:k], text[k:])
				if got != want {
					t.Fatalf("split at %d: got %q, want %q", k, got, want)
				}
				if strings.Contains(got, form) || strings.Contains(got, streamSecret) {
					t.Fatalf("split at %d leaked: %q", k, got)
				}
			}
		})
	}
}

func TestStreamThreeWaySplitsAndBytes(t *testing.T) {
	t.Parallel()
	// One secret contains another: the longer one must win wherever it is split.
	r := New("abcdefgh", "abcdefgh12345", streamSecret)
	text := "xxabcdefgh1yy abcdefgh12345 abcdefgh" + streamSecret + "abcdefgh1234"
	want := r.String(text)
	for i := 0; i <= len(text); i++ {
		for j := i; j <= len(text); j++ {
			if got := streamAll(t, r, text[:i], text[i:j], text[j:]); got != want {
				t.Fatalf("split %d/%d: got %q, want %q", i, j, got, want)
			}
		}
	}
	var chunks []string
	for i := range len(text) {
		chunks = append(chunks, text[i:i+1])
	}
	if got := streamAll(t, r, chunks...); got != want {
		t.Fatalf("byte at a time: got %q, want %q", got, want)
	}
}

func TestStreamHoldsBackOnlyWhatItMust(t *testing.T) {
	t.Parallel()
	r := New(streamSecret)
	var out bytes.Buffer
	s := r.NewStream(&out)
	write := func(p string) {
		t.Helper()
		if _, err := s.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	// A complete line is written out at once: no secret spans a newline.
	write("first line\n")
	if out.String() != "first line\n" {
		t.Fatalf("complete line held back: %q", out.String())
	}
	// A partial line keeps at most len(longest needle)-1 bytes back.
	long := strings.Repeat("z", 200)
	write(long)
	maxNeedle := len(r.needles[0])
	if got := out.Len() - len("first line\n"); got != len(long)-(maxNeedle-1) {
		t.Fatalf("wrote %d of %d bytes; expected all but %d", got, len(long), maxNeedle-1)
	}
	write(streamSecret[:5])
	if strings.Contains(out.String(), streamSecret[:5]) {
		t.Fatalf("start of a possible secret written early: %q", out.String())
	}
	write(streamSecret[5:] + " tail")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "first line\n" + long + Mask + " tail"; out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

// With a secret that contains a newline, lines are no longer flushed early.
func TestStreamSecretWithNewline(t *testing.T) {
	t.Parallel()
	secret := "line-one-abc\nline-two-def"
	r := New(secret)
	text := "a " + secret + " b\n"
	want := r.String(text)
	if strings.Contains(want, secret) {
		t.Fatalf("String leaked: %q", want)
	}
	for k := 0; k <= len(text); k++ {
		if got := streamAll(t, r, text[:k], text[k:]); got != want {
			t.Fatalf("split at %d: got %q, want %q", k, got, want)
		}
	}
}

func TestStreamPassThroughWithoutSecrets(t *testing.T) {
	t.Parallel()
	var nilR *Redactor
	for _, r := range []*Redactor{nilR, New(), New("short")} {
		var out bytes.Buffer
		s := r.NewStream(&out)
		if _, err := s.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		if out.String() != "abc" {
			t.Fatalf("empty redactor buffered: %q", out.String())
		}
		if err := s.Close(); err != nil || out.String() != "abc" {
			t.Fatalf("Close = %v, out %q", err, out.String())
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("disk full")
}

func TestStreamWriteErrorIsSticky(t *testing.T) {
	t.Parallel()
	w := &failWriter{}
	s := New(streamSecret).NewStream(w)
	if _, err := s.Write([]byte("line\n")); err == nil {
		t.Fatal("write error not returned")
	}
	if _, err := s.Write([]byte("more\n")); err == nil || w.n != 1 {
		t.Fatalf("second Write = %v after %d underlying writes", err, w.n)
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close hid the write error")
	}
}

func TestStreamConcurrentWriters(t *testing.T) {
	t.Parallel()
	r := New(streamSecret)
	var out bytes.Buffer
	s := r.NewStream(&out)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				fmt.Fprintf(s, "g%d line %d %s\n", g, i, streamSecret)
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 200 || strings.Contains(out.String(), streamSecret) {
		t.Fatalf("%d lines, leaked=%v", len(lines), strings.Contains(out.String(), streamSecret))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, " "+Mask) {
			t.Fatalf("line not masked whole: %q", l)
		}
	}
}

// FuzzStream: any chunking of any text around the secret's forms gives exactly the
// one-shot output and never leaks the secret.
func FuzzStream(f *testing.F) {
	f.Add("hello ", " world\n", []byte{1, 2, 3})
	f.Add("", "", []byte{})
	f.Add("trk_agent_s3cr3t", "/value+x", []byte{16, 0, 255})
	f.Add("dHJrX2FnZW50X3Mz", "\n\n", []byte{5, 5, 5, 5, 5, 5})
	f.Add(strings.Repeat("a", 100), streamSecret[:10], []byte{99, 1})
	r := New(streamSecret)
	b64 := base64.StdEncoding.EncodeToString([]byte(streamSecret))
	q := url.QueryEscape(streamSecret)
	f.Fuzz(func(t *testing.T, pre, post string, cuts []byte) {
		text := pre + streamSecret + post + b64 + pre + q + post
		want := r.String(text)
		var chunks []string
		rest := text
		for _, c := range cuts {
			if rest == "" {
				break
			}
			n := min(int(c)%(len(rest)+1), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		chunks = append(chunks, rest)
		got := streamAll(t, r, chunks...)
		if got != want {
			t.Fatalf("chunks %q: got %q, want %q", chunks, got, want)
		}
		if strings.Contains(got, streamSecret) || strings.Contains(got, b64) || strings.Contains(got, q) {
			t.Fatalf("leaked: %q", got)
		}
	})
}

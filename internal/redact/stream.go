package redact

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("redact: write to closed stream")

// Stream masks secrets in a byte stream, even when a secret is split across Write
// calls: it holds back the last len(longest needle)-1 bytes until more input shows
// whether they start a secret, so it holds back enough for the longest Variants form.
// Output is byte-for-byte what Redactor.String would produce for the concatenated
// input, except that a gzip+base64 run is not decoded (that needs the whole run). Close flushes the held-back bytes; it does not
// close the underlying writer. A Stream is safe for concurrent use.
type Stream struct {
	mu      sync.Mutex
	w       io.Writer
	needles []string // longest first, as in Redactor
	maxLen  int
	first   [256]bool // bytes some needle starts with
	// lineSafe is true when no needle contains '\n', so no secret can span a line
	// break and every complete line can be written out at once.
	lineSafe bool
	buf      []byte // input not yet decided
	out      []byte // scratch for output
	err      error  // sticky write error
	closed   bool
}

var _ io.WriteCloser = (*Stream)(nil)

// NewStream returns a Stream writing the masked input to w.
func (r *Redactor) NewStream(w io.Writer) *Stream {
	s := &Stream{w: w, lineSafe: true}
	if r == nil {
		return s
	}
	s.needles = r.needles
	for _, n := range r.needles {
		s.maxLen = max(s.maxLen, len(n))
		s.first[n[0]] = true
		if strings.ContainsRune(n, '\n') {
			s.lineSafe = false
		}
	}
	return s
}

// Write masks and forwards whatever part of p can be decided now.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return 0, ErrClosed
	case s.err != nil:
		return 0, s.err
	}
	if len(s.needles) == 0 {
		n, err := s.w.Write(p)
		if err != nil {
			s.err = err
		}
		return n, err
	}
	s.buf = append(s.buf, p...)
	if err := s.flush(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes out the held-back bytes. Further Writes fail; Close is idempotent.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.err
	}
	s.closed = true
	if s.err != nil {
		return s.err
	}
	return s.flush(true)
}

// flush decides every position whose outcome cannot change with more input (all of
// them when final) and writes the result.
//
// Matching mirrors strings.Replacer as Redactor.String uses it: scan left to right,
// at each position take the first (longest) needle that starts there, continue after
// it. The decision at position i depends only on buf[i:i+maxLen], so it is final once
// that many bytes are present.
func (s *Stream) flush(final bool) error {
	buf := s.buf
	limit := len(buf) - (s.maxLen - 1)
	if final {
		limit = len(buf)
	} else if s.lineSafe {
		if k := bytes.LastIndexByte(buf, '\n'); k+1 > limit {
			limit = k + 1
		}
	}
	out := s.out[:0]
	i := 0
	for i < limit {
		if s.first[buf[i]] {
			if n := s.matchAt(buf[i:]); n > 0 {
				out = append(out, Mask...)
				i += n
				continue
			}
		}
		out = append(out, buf[i])
		i++
	}
	if cap(buf) > 64<<10 && len(buf)-i < 4<<10 {
		s.buf = append([]byte(nil), buf[i:]...) // let one huge Write's buffer go
	} else {
		s.buf = append(buf[:0], buf[i:]...)
	}
	s.out = out[:0]
	if cap(out) > 64<<10 {
		s.out = nil
	}
	if len(out) == 0 {
		return nil
	}
	if _, err := s.w.Write(out); err != nil {
		s.err = err
		return err
	}
	return nil
}

// matchAt returns the length of the first needle b starts with, or 0.
func (s *Stream) matchAt(b []byte) int {
	for _, n := range s.needles {
		if len(b) >= len(n) && string(b[:len(n)]) == n {
			return len(n)
		}
	}
	return 0
}

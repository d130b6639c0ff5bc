package worker

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxLineBytes bounds one stdout line of the agent CLI. Real lines reach several
// MiB (tool results, an init line listing hundreds of tools); anything longer is
// skipped rather than buffered without limit.
const maxLineBytes = 64 << 20

// readLines calls line for every line of r (without the newline and a trailing
// \r, blank lines skipped). A line longer than max bytes is discarded and reported
// through tooLong with its length. A final line without a newline is still
// delivered: the CLI may be cut off mid-write. It returns the first read error
// other than io.EOF.
func readLines(r io.Reader, max int, line func([]byte), tooLong func(n int)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	skipping := false
	skipped := 0
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case skipping:
			skipped += len(chunk)
		case len(buf)+len(chunk) > max+1: // +1: the newline itself does not count
			skipping = true
			skipped = len(buf) + len(chunk)
			buf = buf[:0]
		default:
			buf = append(buf, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if skipping {
			if bytes.HasSuffix(chunk, []byte{'\n'}) {
				skipped--
			}
			tooLong(skipped)
			skipping = false
			skipped = 0
		} else if l := trimEOL(buf); len(bytes.TrimSpace(l)) > 0 {
			line(l)
		}
		buf = buf[:0]
		if cap(buf) > 1<<20 {
			buf = nil // do not pin a multi-MiB buffer after one huge line
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

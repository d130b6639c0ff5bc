package docker

import (
	"bytes"
	"hash/fnv"
	"io"
	"time"
)

// onceWriter makes a timestamped log stream exactly-once. It sits between
// stdcopy and the caller's writer of one stream, where every Write is one log
// message of the engine: "TIMESTAMP content", content ending in "\n" unless the
// engine split a long line into parts (all parts carry the first part's
// timestamp).
//
// The json-file driver of Docker 20.10 repeats messages when a followed log
// rotates, with their original timestamps. Within one stream timestamps only
// grow, so a message that is not newer than the last one delivered is such a
// repeat and is dropped; an equal timestamp is a repeat only when the content
// is equal too, so two distinct lines stamped in the same nanosecond both pass.
// Continuation parts of a long line are passed on without their timestamp, so
// the caller sees the line whole.
type onceWriter struct {
	w       io.Writer
	last    time.Time // timestamp of the last delivered line
	lastSum uint64    // hash of that line's first part
	open    bool      // that line has parts still to come
	parts   int       // parts of that line delivered so far
	skip    int       // parts of that line coming again, to drop (see reread)
	dropTS  time.Time // timestamp of a repeated line being dropped
	dropOpn bool      // that repeated line has parts still to come
}

// reread prepares for a second read that starts at the last delivered
// timestamp: the parts of an unfinished line that were delivered come again.
func (o *onceWriter) reread() {
	o.skip = 0
	if o.open {
		o.skip = o.parts
	}
	o.dropOpn = false
}

func (o *onceWriter) Write(p []byte) (int, error) {
	sp := bytes.IndexByte(p, ' ')
	ts, err := time.Time{}, error(nil)
	if sp > 0 {
		ts, err = time.Parse(time.RFC3339Nano, string(p[:sp]))
	}
	if sp <= 0 || err != nil {
		// Not a timestamped message: nothing to judge it by.
		return len(p), o.pass(p)
	}
	content := p[sp+1:]
	ends := bytes.HasSuffix(content, []byte{'\n'})
	switch {
	case o.skip > 0 && ts.Equal(o.last):
		// A part of the unfinished line that was delivered already.
		o.skip--
		return len(p), nil
	case o.dropOpn && ts.Equal(o.dropTS):
		// The next part of a repeated line.
		o.dropOpn = !ends
		return len(p), nil
	case o.open && ts.Equal(o.last) && o.skip == 0 && !o.firstPart(content):
		// The next part of the long line in progress.
		o.open = !ends
		o.parts++
		return len(p), o.pass(content)
	}
	o.skip = 0
	sum := hash(content)
	if ts.Before(o.last) {
		o.dropTS, o.dropOpn = ts, !ends
		return len(p), nil
	}
	if ts.Equal(o.last) && sum == o.lastSum {
		// The line in progress (or the last one) from its start again: drop
		// the parts that were delivered, keep what follows.
		if o.open {
			o.skip = o.parts - 1
		} else {
			o.dropTS, o.dropOpn = ts, !ends
		}
		return len(p), nil
	}
	if o.open {
		// A line the engine never finished (its writer died mid-line): end it
		// so the next message does not run into it.
		if err := o.pass([]byte{'\n'}); err != nil {
			return 0, err
		}
	}
	o.last, o.lastSum, o.parts, o.open, o.dropOpn = ts, sum, 1, !ends, false
	return len(p), o.pass(p)
}

// firstPart reports whether content is the first part of the line in progress
// coming again (a repeat), rather than its next part.
func (o *onceWriter) firstPart(content []byte) bool { return hash(content) == o.lastSum }

func hash(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// pass writes p on; stdcopy takes any error as the end of the stream.
func (o *onceWriter) pass(p []byte) error {
	_, err := o.w.Write(p)
	return err
}

// catchUpFrom is where a second read must start so that neither stream misses a
// line after the last one it delivered: the earlier of the two, or zero (from
// the start) when a stream delivered nothing.
func catchUpFrom(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if b.Before(a) {
		return b
	}
	return a
}

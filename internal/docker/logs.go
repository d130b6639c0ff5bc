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
	w        io.Writer
	last     time.Time // timestamp of the last delivered message
	lastSum  uint64    // hash of the first part of the last delivered message
	partial  bool      // the last delivered message did not end its line
	parts    int       // parts of the line in progress delivered so far
	skip     int       // parts of that line a re-read must skip (see reread)
	dropping bool      // the line in progress is a repeat; drop its parts too
}

// reread prepares for a second read that starts at the last delivered
// timestamp: the parts of an unfinished line that were delivered come again.
func (o *onceWriter) reread() {
	o.skip = 0
	if o.partial {
		o.skip = o.parts
	}
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
	if o.skip > 0 && ts.Equal(o.last) {
		o.skip--
		return len(p), nil
	}
	o.skip = 0
	if o.partial && ts.Equal(o.last) {
		// The next part of the long line in progress.
		o.partial = !ends
		if o.dropping {
			return len(p), nil
		}
		o.parts++
		return len(p), o.pass(content)
	}
	sum := fnv.New64a()
	_, _ = sum.Write(content)
	repeat := ts.Before(o.last) || (ts.Equal(o.last) && sum.Sum64() == o.lastSum)
	if o.partial && !o.dropping && !repeat {
		// A line the engine never finished (its writer died mid-line): end it
		// so the next message does not run into it.
		if _, err := o.w.Write([]byte{'\n'}); err != nil {
			return 0, err
		}
	}
	o.partial = !ends
	if repeat {
		o.dropping = true
		return len(p), nil
	}
	o.dropping = false
	o.last, o.lastSum, o.parts = ts, sum.Sum64(), 1
	return len(p), o.pass(p)
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

package supervisor

import (
	"bytes"
	"time"
)

// dockerPartialSize is where the engine's json-file log driver splits a long
// line into partial messages. Read back with timestamps, every partial after the
// first carries its own "<RFC3339Nano> " prefix in the middle of the line.
const dockerPartialSize = 16 << 10

// lineOverlap is how much of a piece of an overlong line the next piece
// repeats: pieces are masked one by one and shown from their start, so a secret
// across the cut must reach the next piece whole. It exceeds the longest
// encoded form of any realistic key.
const lineOverlap = 4 << 10

// joinPartials removes the timestamps the engine put inside one long line, so
// the line is masked whole: a secret across a partial boundary would otherwise
// reach masking as two halves with a timestamp between them.
func joinPartials(content []byte) []byte {
	if len(content) <= dockerPartialSize {
		return content
	}
	var out []byte
	for len(content) > dockerPartialSize {
		rest := content[dockerPartialSize:]
		i := bytes.IndexByte(rest, ' ')
		if i <= 0 || i > len(time.RFC3339Nano)+1 {
			break
		}
		if _, err := time.Parse(time.RFC3339Nano, string(rest[:i])); err != nil {
			break
		}
		out = append(out, content[:dockerPartialSize]...)
		content = rest[i+1:]
	}
	if out == nil {
		return content
	}
	return append(out, content...)
}

package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stampedLines collects "TIMESTAMP text" lines as LogsSince writes them and can
// end the follow (cancel) after a given line number.
type stampedLines struct {
	mu        sync.Mutex
	buf       []byte
	nums      []int
	stamps    []time.Time
	bad       []string
	stopAt    int
	lostParts int
	stopped   bool
	cancel    context.CancelFunc
}

func (s *stampedLines) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		s.line(string(s.buf[:i]))
		s.buf = s.buf[i+1:]
	}
}

func (s *stampedLines) line(l string) {
	if s.stopped {
		return
	}
	stamp, text, _ := strings.Cut(l, " ")
	ts, err := time.Parse(time.RFC3339Nano, stamp)
	num, rest, _ := strings.Cut(strings.TrimPrefix(text, "line-"), " ")
	n, nerr := strconv.Atoi(num)
	switch {
	case err == nil && onlyX(text):
		// The later parts of a long line whose first part the rotation
		// removed: a loss, not a fault of the follow.
		s.lostParts++
		return
	case err != nil || nerr != nil || !strings.HasPrefix(text, "line-"):
		s.bad = append(s.bad, short(l))
		return
	case n%5000 == 0 && len(rest) < 40<<10 && onlyX(rest):
		s.lostParts++ // the rotation removed its later parts
	case n%5000 == 0 && rest != strings.Repeat("x", 40<<10):
		s.bad = append(s.bad, fmt.Sprintf("long line %s arrived mangled (%d bytes, only x: %v): %s", num, len(rest), onlyX(rest), short(strings.TrimLeft(rest, "x"))))
	}
	s.nums = append(s.nums, n)
	s.stamps = append(s.stamps, ts)
	if s.stopAt > 0 && n >= s.stopAt {
		s.stopped = true
		s.cancel()
	}
}

func onlyX(s string) bool { return s != "" && strings.Trim(s, "x") == "" }

func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// checkOnceInOrder fails on a repeated or out-of-order number and returns how
// many numbers are missing between the first and last seen.
func checkOnceInOrder(t *testing.T, nums []int) (missing int) {
	t.Helper()
	dups := 0
	for i := 1; i < len(nums); i++ {
		switch d := nums[i] - nums[i-1]; {
		case d <= 0:
			dups++
			if dups <= 5 {
				t.Errorf("line %d arrived after line %d (repeated or out of order)", nums[i], nums[i-1])
			}
		case d > 1:
			missing += d - 1
		}
	}
	if dups > 0 {
		t.Errorf("%d lines repeated or out of order", dups)
	}
	return missing
}

// A flood through a json-file log that rotates many times while being followed
// must arrive exactly once per line, in order, with long lines whole. A follow
// that is cut in the middle and resumed from the last delivered timestamp, as a
// restarted supervisor does, must continue without repeating a line.
func TestLogsSinceRotationExactlyOnce(t *testing.T) {
	t.Parallel()
	const n = 300000
	c, img, ctx := probeTest(t, time.Minute)
	spec := probeSpec(img, "flood", strconv.Itoa(n))
	spec.LogMaxSize = "256k"

	id, waitC := startContainer(ctx, t, c, spec)
	first := &stampedLines{stopAt: n / 3}
	fctx, cancel := context.WithCancel(ctx)
	first.cancel = cancel
	err := c.LogsSince(fctx, id, time.Time{}, true, first, nil)
	cancel()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("first follow: %v", err)
	}
	if len(first.stamps) == 0 {
		t.Fatalf("first follow delivered nothing; bad lines: %q", first.bad)
	}
	resume := first.stamps[len(first.stamps)-1].Add(time.Nanosecond)

	second := &stampedLines{}
	if err := c.LogsSince(ctx, id, resume, true, second, nil); err != nil {
		t.Fatalf("second follow: %v", err)
	}
	if res := <-waitC; res.Err != nil || res.Status.Code != 0 {
		t.Fatalf("wait %+v", res)
	}
	for _, b := range append(first.bad, second.bad...) {
		t.Errorf("bad line: %s", b)
	}
	all := append(append([]int(nil), first.nums...), second.nums...)
	missing := checkOnceInOrder(t, all)
	t.Logf("%d lines delivered (%d before the cut at %d, %d after), %d missing between them, %d long lines cut by the rotation",
		len(all), len(first.nums), first.nums[len(first.nums)-1], len(second.nums), missing, first.lostParts+second.lostParts)
	if len(second.nums) == 0 || second.nums[len(second.nums)-1] != n {
		t.Errorf("the last line %d never arrived", n)
	}
}

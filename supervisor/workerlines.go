package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// What the supervisor checks of the worker's stdout lines: their signature
// (the agent may reach the container's stdout) and their numbers (the log may
// lose or repeat lines).

// lineNumbers follows the worker's line numbers: a gap is lines the
// container's log lost (rotated away before they were read), a number not above
// the last is a line delivered twice.
type lineNumbers struct {
	last  int64
	known bool // false after a restart whose record had no number: take the next as is
}

func (l *lineNumbers) check(n int64) (lost int64, repeat bool) {
	if n <= 0 {
		return 0, false // not a numbered worker line
	}
	if l.known && n <= l.last {
		return 0, true
	}
	if l.known && n > l.last+1 {
		lost = n - l.last - 1
	}
	l.last, l.known = n, true
	return lost, false
}

func unsignedText(n int64) string {
	if n == 1 {
		return "Ignored a line on the worker's output that the worker did not write (something in the container forged it)"
	}
	return fmt.Sprintf("Ignored %d lines on the worker's output that the worker did not write (something in the container forged them)", n)
}

func isPowerOf10(n int64) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// writeEventKey puts a fresh key for the worker's line signatures into the
// output folder, for the worker to read and remove before the agent starts,
// and returns it in hex. The folder is the agent's from earlier runs: a
// symlink left at the key's path is removed, never followed.
func writeEventKey(dir string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make the event key: %w", err)
	}
	key := hex.EncodeToString(b)
	path := filepath.Join(dir, workerproto.KeyFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("write the event key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", fmt.Errorf("write the event key: %w", err)
	}
	_, err = f.WriteString(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write the event key: %w", err)
	}
	return key, nil
}

func lostText(n int64) string {
	if n == 1 {
		return "1 line of the agent's output was lost (container log rotation)"
	}
	return fmt.Sprintf("%d lines of the agent's output were lost (container log rotation)", n)
}

// reportTailLoss compares the number of lines the worker says it wrote (in its
// signed result) with the last one read: lines rotated away at the very end
// leave no later line to show the gap.
func (s *Supervisor) reportTailLoss(r *run, res *workerproto.Result, key []byte, last int64) {
	if res == nil || res.Lines <= last || len(key) == 0 || !workerproto.VerifyCount(key, res.Lines, res.LinesSig) {
		return
	}
	lost := res.Lines - last
	r.log.Warn("worker lines lost at the end", zap.Int64("lost", lost), zap.Int64("lines", res.Lines))
	r.emit(trakkar.EventError, lostText(lost), map[string]any{"lost_lines": lost})
}

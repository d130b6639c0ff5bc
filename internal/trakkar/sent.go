package trakkar

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The sent record holds the highest seq a shipper with SpoolDir has sent (or
// was about to send) for a run: "<attempt> <seq>\n", the attempt being the one
// that sent it. It is written durably before each request, so that a
// restarted runner that cannot read acked_seq from Trakkar still never gives
// a seq Trakkar may hold to other content. Seqs belong to the run, not to an
// attempt: a later attempt continues after the record too.
const sentSuffix = ".sent"

// SentPath is the file in which a shipper with SpoolDir dir records the
// highest seq it sent for runID.
func SentPath(dir, runID string) (string, error) {
	if !fileSafeRunID(runID) {
		return "", fmt.Errorf("sent record path: run id %q is not usable as a file name", cleanText(runID, "", 64))
	}
	return filepath.Join(dir, runID+sentSuffix), nil
}

// ReadSentSeq returns the highest seq recorded as sent for runID, by any
// attempt; 0 when there is no record.
func ReadSentSeq(dir, runID string) (int64, error) {
	path, err := SentPath(dir, runID)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read sent record: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("read sent record %s: want \"<attempt> <seq>\"", path)
	}
	_, err1 := strconv.Atoi(f[0])
	seq, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || seq < 0 {
		return 0, fmt.Errorf("read sent record %s: want \"<attempt> <seq>\"", path)
	}
	return seq, nil
}

// writeSentSeq replaces the record atomically and durably: the new content
// is synced before the rename, and the rename before returning.
func writeSentSeq(dir, runID string, attempt int, seq int64) error {
	path, err := SentPath(dir, runID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write sent record: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".sent-*")
	if err != nil {
		return fmt.Errorf("write sent record: %w", err)
	}
	_, werr := fmt.Fprintf(tmp, "%d %d\n", attempt, seq)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write sent record: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write sent record: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself survives a power loss
		_ = d.Close()
	}
	return nil
}

func removeSentSeq(dir, runID string) error {
	path, err := SentPath(dir, runID)
	if err != nil {
		return nil // nothing was ever written there
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove sent record: %w", err)
	}
	return nil
}

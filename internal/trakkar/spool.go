package trakkar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"go.uber.org/zap"
)

const (
	defaultShipMaxMemory     = 2000
	defaultShipMaxSpoolBytes = 256 << 20
	// spoolWriteBuffer bounds the lines held before one write: Add stays cheap
	// (one write per ~64 KiB) and a crash loses little.
	spoolWriteBuffer = 64 << 10
	spoolSuffix      = ".events.jsonl"
	maxRunIDFileName = 200
)

var (
	errSpoolFull        = errors.New("spool is full")
	errSpoolUnavailable = errors.New("spool is unavailable")
	// seqZeroPrefix starts every event encoded with Seq 0: Seq is the first
	// field, so a spool line is this prefix with the real seq spliced in.
	seqZeroPrefix = []byte(`{"seq":0,`)
)

// SpoolPath is the file in which a shipper with SpoolDir dir spills the events
// of runID. A file left there by an earlier process is never replayed or
// removed by a new shipper; the caller decides what to do with it.
func SpoolPath(dir, runID string) (string, error) {
	if !fileSafeRunID(runID) {
		return "", fmt.Errorf("spool path: run id %q is not usable as a file name", cleanText(runID, "", 64))
	}
	return filepath.Join(dir, runID+spoolSuffix), nil
}

// fileSafeRunID refuses ids that could leave the directory or hide the file.
func fileSafeRunID(id string) bool {
	if id == "" || len(id) > maxRunIDFileName || id[0] == '.' {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// spool is the append-only overflow file of one run: JSON lines, one event
// each, in seq order. The Shipper's mutex guards every field; only the reading
// of already written bytes (readSpool) happens outside it.
//
// The file is opened at the first spill. Content it held before (a spool of an
// earlier process) is skipped and, at cleanup, restored by truncation instead
// of removing the file.
type spool struct {
	dir      string // "" → spilling disabled
	path     string
	pathErr  error
	maxBytes int64
	log      *zap.Logger

	f        *os.File
	origSize int64 // size before this shipper wrote to it
	base     int64 // where this shipper's lines start
	durable  int64 // end of the bytes written to the file
	readOff  int64 // next byte to read back
	wbuf     []byte
	wbufN    int   // events in wbuf
	count    int   // events in the spool (file or wbuf) not read back yet
	lastSeq  int64 // seq of the last event appended

	broken     bool // a disk error happened: no more appends for this run
	closed     bool
	fullLogged bool
}

func newSpool(dir, runID string, maxBytes int64, log *zap.Logger) *spool {
	sp := &spool{dir: dir, maxBytes: maxBytes, log: log}
	if dir == "" {
		return sp
	}
	if sp.maxBytes <= 0 {
		sp.maxBytes = defaultShipMaxSpoolBytes
	}
	sp.path, sp.pathErr = SpoolPath(dir, runID)
	if sp.pathErr == nil {
		if fi, err := os.Lstat(sp.path); err == nil && fi.Size() > 0 {
			log.Info("a spool of an earlier process exists; it is not replayed",
				zap.String("path", sp.path), zap.Int64("bytes", fi.Size()))
		}
	}
	return sp
}

func (sp *spool) openLocked() error {
	if sp.pathErr != nil {
		return sp.pathErr
	}
	if err := os.MkdirAll(sp.dir, 0o700); err != nil {
		return fmt.Errorf("create spool dir: %w", err)
	}
	// Refuse a symlink or device planted at the path: the file is written
	// with the supervisor's rights.
	if fi, err := os.Lstat(sp.path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("open spool: %s is not a regular file", sp.path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open spool: %w", err)
	}
	f, err := os.OpenFile(sp.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("open spool: %w", err)
	}
	size := fi.Size()
	base := size
	if size > 0 {
		// An earlier process may have died mid-line: start on a fresh one.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			_ = f.Close()
			return fmt.Errorf("open spool: %w", err)
		}
		if last[0] != '\n' {
			if _, err := f.WriteAt([]byte{'\n'}, size); err != nil {
				_ = f.Close()
				return fmt.Errorf("open spool: %w", err)
			}
			base++
		}
	}
	sp.f, sp.origSize, sp.base, sp.durable, sp.readOff = f, size, base, base, base
	return nil
}

// used is the bytes this shipper put in the file, written or buffered.
func (sp *spool) used() int64 {
	return sp.durable - sp.base + int64(len(sp.wbuf))
}

// appendLocked spools one event, enc being its encoding with Seq 0. An error
// means the event was not stored. lost > 0 means a write failed and the last
// lost events appended earlier are gone: the caller must un-number them.
func (sp *spool) appendLocked(seq int64, enc []byte) (lost int, err error) {
	if sp.dir == "" || sp.broken || sp.closed || !bytes.HasPrefix(enc, seqZeroPrefix) {
		return 0, errSpoolUnavailable
	}
	if sp.f == nil {
		if err := sp.openLocked(); err != nil {
			sp.broken = true
			sp.log.Warn("cannot spill events to disk; events past the memory cap are dropped",
				zap.String("path", sp.path), zap.Error(err))
			return 0, errSpoolUnavailable
		}
	}
	rest := enc[len(seqZeroPrefix)-1:] // from the comma on
	lineLen := len(`{"seq":`) + 20 + len(rest) + 1
	if sp.used()+int64(lineLen) > sp.maxBytes {
		if !sp.fullLogged {
			sp.fullLogged = true
			sp.log.Warn("event spool is full; dropping events", zap.String("path", sp.path), zap.Int64("max_bytes", sp.maxBytes))
		}
		return 0, errSpoolFull
	}
	if len(sp.wbuf) > 0 && len(sp.wbuf)+lineLen > spoolWriteBuffer {
		if lost, err := sp.flushLocked(); err != nil {
			return lost, err
		}
	}
	sp.wbuf = append(sp.wbuf, `{"seq":`...)
	sp.wbuf = strconv.AppendInt(sp.wbuf, seq, 10)
	sp.wbuf = append(sp.wbuf, rest...)
	sp.wbuf = append(sp.wbuf, '\n')
	sp.wbufN++
	sp.count++
	sp.lastSeq = seq
	return 0, nil
}

// flushLocked writes the buffered lines. On failure the buffered events are
// lost (reported as lost) and the spool takes no more appends.
func (sp *spool) flushLocked() (lost int, err error) {
	if len(sp.wbuf) == 0 || sp.f == nil {
		return 0, nil
	}
	n, err := sp.f.WriteAt(sp.wbuf, sp.durable)
	if err != nil {
		// No half line for a later reader of the file; best effort.
		_ = sp.f.Truncate(sp.durable)
		lost = sp.wbufN
		sp.count -= lost
		sp.lastSeq -= int64(lost)
		sp.wbuf, sp.wbufN = sp.wbuf[:0], 0
		sp.broken = true
		sp.log.Warn("writing the event spool failed; dropping events past the memory cap from now on",
			zap.String("path", sp.path), zap.Int("lost", lost), zap.Error(err))
		return lost, fmt.Errorf("write spool: %w", err)
	}
	sp.durable += int64(n)
	sp.wbuf, sp.wbufN = sp.wbuf[:0], 0
	if cap(sp.wbuf) > 4*spoolWriteBuffer {
		sp.wbuf = nil // a huge event passed through; do not keep its buffer
	}
	return 0, nil
}

// readableLocked flushes and returns what readSpool may read.
func (sp *spool) readableLocked() (f *os.File, from, to int64, lost int) {
	lost, _ = sp.flushLocked()
	return sp.f, sp.readOff, sp.durable, lost
}

// consumedLocked records n events (used bytes) moved into memory.
func (sp *spool) consumedLocked(n int, used int64) {
	sp.readOff += used
	sp.count -= n
}

// discardLocked gives up the unread events after a read failure and returns
// how many were lost.
func (sp *spool) discardLocked(cause error) int {
	lost := sp.count
	sp.log.Warn("reading the event spool failed; dropping the events still in it",
		zap.String("path", sp.path), zap.Int("lost", lost), zap.Error(cause))
	if err := sp.resetLocked(); err != nil {
		sp.log.Warn("cleaning up the event spool failed", zap.String("path", sp.path), zap.Error(err))
	}
	sp.broken = true
	return lost
}

// done reports that every spooled event was read back and acked, so the file
// holds nothing of value.
func (sp *spool) done(acked int64) bool {
	return sp.f != nil && sp.count == 0 && acked >= sp.lastSeq
}

// resetLocked empties the spool and gives the file back: removed, or
// truncated to what an earlier process left in it.
func (sp *spool) resetLocked() error {
	sp.count, sp.wbufN, sp.wbuf = 0, 0, nil
	sp.fullLogged = false
	if sp.f == nil {
		return nil
	}
	var errs []error
	if sp.origSize > 0 {
		if err := sp.f.Truncate(sp.origSize); err != nil {
			errs = append(errs, err)
		}
	}
	if err := sp.f.Close(); err != nil {
		errs = append(errs, err)
	}
	if sp.origSize == 0 {
		if err := os.Remove(sp.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	sp.f = nil
	sp.origSize, sp.base, sp.durable, sp.readOff = 0, 0, 0, 0
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove spool: %w", err)
	}
	return nil
}

// closeLocked ends spooling. With nothing pending the file is given back;
// otherwise the buffered lines are written and the file kept.
func (sp *spool) closeLocked(nothingPending bool) (lost int, err error) {
	sp.closed = true
	if sp.f == nil {
		return 0, nil
	}
	if nothingPending {
		return 0, sp.resetLocked()
	}
	lost, ferr := sp.flushLocked()
	cerr := sp.f.Close()
	sp.f = nil
	if err := errors.Join(ferr, cerr); err != nil {
		return lost, fmt.Errorf("close spool: %w", err)
	}
	return lost, nil
}

// readSpool decodes up to want events from f[from:to], which must continue
// at seq first. used is the bytes consumed. It runs without the Shipper's
// lock: those bytes are written already and only the sender reads them.
func readSpool(f *os.File, from, to int64, want int, first int64) (evs []queued, used int64, err error) {
	dec := json.NewDecoder(io.NewSectionReader(f, from, to-from))
	dec.UseNumber() // numbers in Data keep their literal form, as in Add
	evs = make([]queued, 0, want)
	for len(evs) < want {
		before := dec.InputOffset()
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // count says more events are there
			}
			return evs, used, fmt.Errorf("read spool at byte %d: %w", from+used, err)
		}
		if want := first + int64(len(evs)); ev.Seq != want {
			return evs, used, fmt.Errorf("read spool at byte %d: seq %d, want %d", from+used, ev.Seq, want)
		}
		used = dec.InputOffset()
		// The line length bounds the event's size with any seq width, plus
		// the widest seq; a slight overestimate only makes batches smaller.
		evs = append(evs, queued{ev: ev, size: int(used-before) + 19})
	}
	return evs, used, nil
}

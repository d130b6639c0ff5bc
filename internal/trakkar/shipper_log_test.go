package trakkar

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trakkar/trakkar-agent/internal/logkey"
)

type nopPoster struct{}

func (nopPoster) PostEvents(context.Context, string, []Event) (int64, error) { return 0, nil }

// jsonKeys counts the top-level keys of one JSON object line; a map would
// hide a duplicate.
func jsonKeys(t *testing.T, line string) map[string]int {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q (%v)", line, err)
	}
	keys := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		keys[tok.(string)]++
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		t.Fatalf("decode %q: %v", line, err)
	}
	return keys
}

// The supervisor hands the shipper a logger that already names the run: each
// shipper line carries run_id once.
func TestShipperLogNamesTheRunOnce(t *testing.T) {
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel)
	runLog := zap.New(core).With(zap.String(logkey.RunID, "run_1"), zap.String(logkey.TaskKey, "WEB-1"))
	s := NewShipper(nopPoster{}, "run_1", ShipperOptions{Logger: runLog})
	// Data that is not JSON makes the shipper warn.
	s.Add(Event{Type: EventLog, Text: "x", Data: map[string]any{"ch": make(chan int)}})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("the shipper logged nothing")
	}
	for _, l := range lines {
		keys := jsonKeys(t, l)
		if keys[logkey.RunID] != 1 {
			t.Errorf("%s appears %d times in %s", logkey.RunID, keys[logkey.RunID], l)
		}
	}
}

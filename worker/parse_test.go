package worker

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// Helpers shared by the providers' parser tests and fuzzers.

// runParser feeds raw to p line by line and finishes it with exit.
func runParser(t testing.TB, p streamParser, raw []byte, exit processExit) ([]workerproto.Line, workerproto.Result, int, string) {
	t.Helper()
	var lines []workerproto.Line
	emit := func(l workerproto.Line) { lines = append(lines, l) }
	err := readLines(bytes.NewReader(raw), maxLineBytes, func(b []byte) { p.Line(b, emit) },
		func(n int) { t.Errorf("unexpected too-long line of %d bytes", n) })
	if err != nil {
		t.Fatalf("readLines: %v", err)
	}
	res, code, class := p.Finish(exit)
	return lines, res, code, class
}

func readFixture(t *testing.T, provider, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", provider, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// checkParsed checks a parse of a fixture: every line stamped by the parser
// clock, and the expected result, exit code and class.
func checkParsed(t *testing.T, lines []workerproto.Line, res workerproto.Result, code int, class string,
	wantRes workerproto.Result, wantCode int, wantClass string) {
	t.Helper()
	for _, l := range lines {
		if !l.At.Equal(fixedNow) {
			t.Errorf("line %q has time %v, want the parser clock", l.Text, l.At)
		}
	}
	if !reflect.DeepEqual(res, wantRes) {
		t.Errorf("result:\n got %+v\nwant %+v", res, wantRes)
	}
	if code != wantCode || class != wantClass {
		t.Errorf("code, class = %d, %q; want %d, %q", code, class, wantCode, wantClass)
	}
}

// fixtures returns the recorded streams of testdata/<provider>, the fuzzers' seeds.
func fixtures(f *testing.F, provider string) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", provider, "*.jsonl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	var out [][]byte
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// fuzzExit is an arbitrary way for the CLI to end, from the fuzzer's input.
func fuzzExit(raw []byte, exitCode int) processExit {
	return processExit{Code: exitCode % 256, StderrTail: string(raw[:min(len(raw), 50)])}
}

// checkParsedAnything checks what must hold whatever the stream: well-formed,
// bounded events and a result consistent with the exit code and class.
func checkParsedAnything(t *testing.T, lines []workerproto.Line, res workerproto.Result, code int, class string) {
	t.Helper()
	for _, l := range lines {
		if !validLineType(l.Type) {
			t.Fatalf("bad event type %q", l.Type)
		}
		checkText(t, l.Text, maxText)
		if l.Type == workerproto.TypeTool {
			if l.Data["name"] == "" || l.Data["summary"] != l.Text {
				t.Fatalf("tool event without name/summary: %+v", l)
			}
		}
	}
	checkText(t, res.Summary, maxSummary)
	switch res.Outcome {
	case workerproto.OutcomeSucceeded:
		if code != workerproto.ExitOK || class != "" || res.Error != "" {
			t.Fatalf("success with code %d class %q error %q", code, class, res.Error)
		}
	case workerproto.OutcomeFailed:
		if res.Error == "" || class == "" || (code != workerproto.ExitAgentFailed && code != workerproto.ExitCLICrashed) {
			t.Fatalf("failure with code %d class %q error %q", code, class, res.Error)
		}
	default:
		t.Fatalf("outcome %q", res.Outcome)
	}
}

func validLineType(t string) bool {
	switch t {
	case workerproto.TypeStatus, workerproto.TypeMessage, workerproto.TypeTool, workerproto.TypeLog, workerproto.TypeError:
		return true
	}
	return false
}

func checkText(t *testing.T, s string, limit int) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8 in %q", s)
	}
	if n := utf8.RuneCountInString(s); n > limit {
		t.Fatalf("text of %d runes exceeds %d", n, limit)
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			t.Fatalf("control character %U in %q", r, s)
		}
	}
}

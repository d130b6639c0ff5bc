package worker

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// The worker signs and numbers every line with the key the supervisor left in
// the output folder, and removes the key file before the agent starts.
func TestRunSignsAndNumbersLines(t *testing.T) {
	const keyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	tests := []struct {
		name    string
		plant   func(t *testing.T, path string) // what lies at the key's path
		code    int
		signed  bool
		keyGone bool
	}{
		{"key file", func(t *testing.T, p string) { write(t, p, keyHex+"\n") }, workerproto.ExitOK, true, true},
		{"no key file", func(*testing.T, string) {}, workerproto.ExitOK, false, true},
		{"symlink is not followed", func(t *testing.T, p string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			write(t, target, keyHex)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}, workerproto.ExitUsage, false, false},
		{"bad key", func(t *testing.T, p string) { write(t, p, "not hex") }, workerproto.ExitUsage, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			path := filepath.Join(h.out, workerproto.KeyFile)
			tt.plant(t, path)
			h.writeJob(claudeJob("fake:write=a.txt=hi"))
			code := Run(t.Context(), h.config())
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, h.stderr.String())
			}
			if _, err := os.Lstat(path); tt.keyGone != errors.Is(err, fs.ErrNotExist) {
				t.Errorf("key file gone: %v, want %v", errors.Is(err, fs.ErrNotExist), tt.keyGone)
			}
			key := []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
			key = append(key, key...)
			raws := strings.Split(strings.TrimSpace(h.stdout.String()), "\n")
			for i, raw := range raws {
				line := []byte(raw)
				if tt.signed {
					var ok bool
					if line, ok = workerproto.Verify(key, line); !ok {
						t.Fatalf("line %d not signed: %q", i+1, raw)
					}
				}
				var l workerproto.Line
				if err := json.Unmarshal(line, &l); err != nil {
					t.Fatalf("line %d: %q: %v", i+1, raw, err)
				}
				if l.N != int64(i+1) {
					t.Errorf("line %d numbered %d", i+1, l.N)
				}
			}
			if tt.code != workerproto.ExitOK {
				return
			}
			// The result says how many lines were written, signed when lines are.
			res := h.result()
			if res.Lines != int64(len(raws)) {
				t.Errorf("result counts %d lines, %d were written", res.Lines, len(raws))
			}
			if got := workerproto.VerifyCount(key, res.Lines, res.LinesSig); got != tt.signed {
				t.Errorf("line count signature valid: %v, want %v", got, tt.signed)
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

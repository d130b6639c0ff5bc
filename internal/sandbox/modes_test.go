package sandbox

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestSafeMode(t *testing.T) {
	for _, tc := range []struct {
		perm uint32
		dir  bool
		want uint32
	}{
		{0o6755, false, 0o755},
		{0o4711, false, 0o711},
		{0o2755, false, 0o755},
		{0o1777, false, 0o775},
		{0o666, false, 0o664},
		{0o644, false, 0o644},
		{0o000, false, 0o000},
		{0o2000, true, 0o700},
		{0o1777, true, 0o1775},
		{0o555, true, 0o755},
		{0o755, true, 0o755},
	} {
		if got := safeMode(tc.perm, tc.dir); got != tc.want {
			t.Errorf("safeMode(%o, dir %v) = %o, want %o", tc.perm, tc.dir, got, tc.want)
		}
	}
}

// Every unsafe bit goes, also behind a folder its owner cannot open, while a
// symlink's target and a FIFO are left alone (a FIFO must not block the walk).
func TestClearModesUnder(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "host-file")
	mustWrite(t, outside, 0o4755)
	hidden := filepath.Join(root, "hidden")
	if err := os.Mkdir(hidden, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]uint32{
		filepath.Join(root, "suid"):      0o6755,
		filepath.Join(root, "ww"):        0o1777,
		filepath.Join(hidden, "suid"):    0o4755,
		filepath.Join(root, "plain.txt"): 0o644,
	}
	for p, m := range files {
		mustWrite(t, p, m)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	chmod(t, filepath.Join(root, "fifo"), 0o6777)
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	chmod(t, hidden, 0o2000)
	chmod(t, root, 0o2777)

	if err := clearModesUnder(root); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{
		root: 0o775, hidden: 0o700, filepath.Join(root, "fifo"): 0o775, outside: 0o4755,
		filepath.Join(root, "suid"): 0o755, filepath.Join(root, "ww"): 0o775,
		filepath.Join(hidden, "suid"): 0o755, filepath.Join(root, "plain.txt"): 0o644,
	}
	for p, m := range want {
		if got := perm(t, p); got != m {
			t.Errorf("%s: mode %o, want %o", p, got, m)
		}
	}
	if err := clearModesUnder(filepath.Join(root, "missing")); err != nil {
		t.Errorf("a missing folder: %v", err)
	}
}

// The out folder comes back empty and writable whatever the last run left.
func TestResetDir(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"read-only", func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "result.json"), 0o644)
			chmod(t, dir, 0o555)
		}},
		{"locked subfolder", func(t *testing.T, dir string) {
			sub := filepath.Join(dir, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(sub, "f"), 0o644)
			chmod(t, sub, 0o000)
		}},
		{"symlink", func(t *testing.T, dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(t.TempDir(), dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing", func(t *testing.T, dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			if err := ResetDir(dir); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(dir)
			if err != nil || !fi.IsDir() || perm(t, dir) != 0o755 {
				t.Fatalf("after reset: %v %v", fi, err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left %d entries", len(ents))
			}
		})
	}
}

func mustWrite(t *testing.T, p string, mode uint32) {
	t.Helper()
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	chmod(t, p, mode)
}

func chmod(t *testing.T, p string, mode uint32) {
	t.Helper()
	if err := syscall.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func perm(t *testing.T, p string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

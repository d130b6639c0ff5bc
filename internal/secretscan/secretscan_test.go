package secretscan

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/redact"
)

const key = "sk-ant-api03-Zx9_Qm7Lr2Vt5wKp8yHn3cDf6gJs1aBe4uMo0iXq-AAAA"

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestScanNamesOffendingPaths(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	hexName := hex.EncodeToString([]byte(key))
	files := map[string]string{
		"clean.txt":         "hello\n",
		"plain.env":         "ANTHROPIC_API_KEY=" + key + "\n",
		"dir/hex.txt":       strings.Repeat("z", 2<<20) + hex.EncodeToString([]byte(key)),
		"dir/" + hexName:    "innocent content\n",
		"blob.b64":          gz("token: " + key),
		"reversed.txt":      "x" + reverseString(key),
		"unaligned.b64":     base64.StdEncoding.EncodeToString([]byte("ab" + key + "tail")),
		"deleted-name-only": "",
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlinked parent must not be followed to a file outside the tree.
	if err := os.WriteFile(filepath.Join(outside, "f"), []byte(key), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("x"+key, filepath.Join(root, "keylink")); err != nil {
		t.Fatal(err)
	}
	ch := func(p, mode string) hostgit.Change { return hostgit.Change{Path: p, Status: "A", Mode: mode} }
	changes := []hostgit.Change{
		ch("clean.txt", hostgit.ModeFile), ch("plain.env", hostgit.ModeFile), ch("dir/hex.txt", hostgit.ModeExec),
		ch("dir/"+hexName, hostgit.ModeFile), ch("blob.b64", hostgit.ModeFile), ch("reversed.txt", hostgit.ModeFile),
		ch("unaligned.b64", hostgit.ModeFile),
		{Path: "keylink", Status: "A", Mode: hostgit.ModeSymlink, LinkTarget: "x" + key},
		{Path: "gone-" + key, Status: "D"},
		ch("link/f", hostgit.ModeFile),
	}
	got := Scan(root, changes, redact.New(key))
	var paths []string
	for _, f := range got {
		paths = append(paths, f.Path)
		if strings.Contains(f.String(), key) || strings.Contains(f.String(), hexName) {
			t.Errorf("finding quotes the secret: %q", f.String())
		}
	}
	want := []string{"plain.env", "dir/hex.txt", "dir/[REDACTED]", "blob.b64", "reversed.txt", "unaligned.b64", "keylink", "gone-[REDACTED]", "link/f"}
	for _, w := range want {
		if !slices.Contains(paths, w) {
			t.Errorf("missing finding for %q in %v", w, paths)
		}
	}
	if slices.Contains(paths, "clean.txt") || len(paths) != len(want) {
		t.Errorf("findings = %v, want %v", paths, want)
	}
	for _, f := range got {
		if f.Path == "link/f" && !strings.Contains(f.Reason, "could not be read") {
			t.Errorf("symlinked parent: reason %q", f.Reason)
		}
	}
	if n := Scan(root, changes[:1], redact.New(key)); len(n) != 0 {
		t.Errorf("clean change refused: %v", n)
	}
	if n := Scan(root, changes, redact.New()); len(n) != 0 {
		t.Errorf("no secrets, yet findings: %v", n)
	}
}

func reverseString(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

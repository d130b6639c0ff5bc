package docker

import "testing"

// CheckImageRef accepts what the engine parses and refuses the rest.
func TestCheckImageRef(t *testing.T) {
	for ref, ok := range map[string]bool{
		"trakkar-agent/worker-claude-code:latest": true,
		"registry.local:5000/acme/worker:1.2":     true,
		"worker@sha256:" + string(make64('a')):    true,
		"BAD IMAGE":                               false,
		"Acme/Worker":                             false,
		"":                                        false,
		"worker:tag:extra":                        false,
		"trakkar-agent/worker-claude-code:bad tag": false,
		"http://registry.local/acme/worker:1":      false,
	} {
		if err := CheckImageRef(ref); (err == nil) != ok {
			t.Errorf("CheckImageRef(%q) = %v, want ok %v", ref, err, ok)
		}
	}
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

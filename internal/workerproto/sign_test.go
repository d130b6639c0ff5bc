package workerproto

import (
	"bytes"
	"testing"
)

func TestSignVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	line := []byte(`{"type":"status","text":"Running claude","n":1}`)
	signed := bytes.TrimSuffix(Sign(key, append(line, '\n')), []byte{'\n'})
	tamper := append([]byte(nil), signed...)
	tamper[len(tamper)-3] = '2'
	tests := []struct {
		name string
		key  []byte
		raw  []byte
		ok   bool
	}{
		{"signed", key, signed, true},
		{"other key", []byte("another key"), signed, false},
		{"tampered line", key, tamper, false},
		{"unsigned", key, line, false},
		{"bad hex", key, append(bytes.Repeat([]byte("zz"), 32), append([]byte{' '}, line...)...), false},
		{"empty", key, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Verify(tt.key, tt.raw)
			if ok != tt.ok || (ok && !bytes.Equal(got, line)) {
				t.Errorf("Verify = %q, %v; want ok %v", got, ok, tt.ok)
			}
		})
	}
}

package workerproto

import "testing"

func TestSignCount(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	sig := SignCount(key, 42)
	tests := []struct {
		name string
		key  []byte
		n    int64
		sig  string
		want bool
	}{
		{"the signed count", key, 42, sig, true},
		{"another count", key, 41, sig, false},
		{"another key", []byte("another key of the same length.."), 42, sig, false},
		{"no key", nil, 42, sig, false},
		{"not hex", key, 42, "zz", false},
		{"empty", key, 42, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyCount(tt.key, tt.n, tt.sig); got != tt.want {
				t.Errorf("VerifyCount = %v, want %v", got, tt.want)
			}
		})
	}
}

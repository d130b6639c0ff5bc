package worker

import (
	"strings"
	"testing"
	"time"
)

func TestStderrLimit(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the write ("" write: Flush)
		write string
	}
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{"within the burst", []step{{0, "abc\n"}, {0, "def\n"}}, "abc\ndef\n"},
		{"flood dropped and counted", []step{{0, "12345678\n"}, {0, "overflow\n"}, {0, "more\n"}, {0, ""}},
			"12345678\ntrakkar-worker: dropped 14 bytes of the agent's stderr (over 0 KiB/s)\n"},
		{"refill lets writes pass, drops reported first", []step{{0, "12345678\n"}, {0, "lost\n"}, {time.Second, "ok\n"}},
			"12345678\ntrakkar-worker: dropped 5 bytes of the agent's stderr (over 0 KiB/s)\nok\n"},
		{"report starts on its own line", []step{{0, "half"}, {0, "of a long line\n"}, {0, ""}},
			"half\ntrakkar-worker: dropped 15 bytes of the agent's stderr (over 0 KiB/s)\n"},
		{"nothing dropped, nothing reported", []step{{0, "a\n"}, {0, ""}}, "a\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(0, 0)
			var out strings.Builder
			l := newStderrLimit(&out, 10, 10, func() time.Time { return now })
			for _, s := range tt.steps {
				now = now.Add(s.after)
				if s.write == "" {
					l.Flush()
					continue
				}
				if n, err := l.Write([]byte(s.write)); n != len(s.write) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if out.String() != tt.want {
				t.Errorf("got %q\nwant %q", out.String(), tt.want)
			}
		})
	}
}

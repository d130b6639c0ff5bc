package docker

import (
	"strings"
	"testing"
)

func TestOnceWriter(t *testing.T) {
	const (
		t1 = "2026-01-01T00:00:00.000000001Z "
		t2 = "2026-01-01T00:00:00.000000002Z "
		t3 = "2026-01-01T00:00:00.000000003Z "
	)
	tests := []struct {
		name   string
		msgs   []string // one Write each, as stdcopy makes them
		reread int      // call reread before message number reread (1-based; 0 never)
		want   string
	}{
		{"in order", []string{t1 + "a\n", t2 + "b\n", t3 + "c\n"}, 0, t1 + "a\n" + t2 + "b\n" + t3 + "c\n"},
		{"rotation repeats older lines", []string{t1 + "a\n", t2 + "b\n", t3 + "c\n", t1 + "a\n", t2 + "b\n", t3 + "c\n"}, 0,
			t1 + "a\n" + t2 + "b\n" + t3 + "c\n"},
		{"repeat of the last line", []string{t1 + "a\n", t1 + "a\n"}, 0, t1 + "a\n"},
		{"same nanosecond, other line", []string{t1 + "a\n", t1 + "b\n"}, 0, t1 + "a\n" + t1 + "b\n"},
		{"long line joined", []string{t1 + "aa", t1 + "bb", t1 + "cc\n", t2 + "d\n"}, 0, t1 + "aabbcc\n" + t2 + "d\n"},
		{"repeated long line dropped whole", []string{t1 + "aa", t1 + "bb\n", t1 + "aa", t1 + "bb\n", t2 + "d\n"}, 0,
			t1 + "aabb\n" + t2 + "d\n"},
		{"unfinished line ended", []string{t1 + "aa", t2 + "d\n"}, 0, t1 + "aa\n" + t2 + "d\n"},
		{"re-read skips delivered parts", []string{t1 + "aa", t1 + "aa", t1 + "bb\n", t2 + "d\n"}, 2, t1 + "aabb\n" + t2 + "d\n"},
		{"re-read after a whole line", []string{t1 + "a\n", t1 + "a\n", t2 + "b\n"}, 2, t1 + "a\n" + t2 + "b\n"},
		{"re-read passes older lines before the unfinished one", []string{t1 + "a\n", t2 + "bb", t1 + "a\n", t2 + "bb", t2 + "cc\n"}, 3,
			t1 + "a\n" + t2 + "bbcc\n"},
		{"line in progress repeated from its start", []string{t2 + "bb", t2 + "cc", t2 + "bb", t2 + "cc", t2 + "dd\n", t3 + "e\n"}, 0,
			t2 + "bbccdd\n" + t3 + "e\n"},
		{"repeated older long line between parts", []string{t2 + "bb", t1 + "aa", t1 + "aa\n", t2 + "cc\n"}, 0,
			t2 + "bbcc\n"},
		{"no timestamp passes", []string{"plain\n", "plain\n"}, 0, "plain\nplain\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got strings.Builder
			o := &onceWriter{w: &got}
			for i, m := range tt.msgs {
				if tt.reread == i+1 {
					o.reread()
				}
				if n, err := o.Write([]byte(m)); err != nil || n != len(m) {
					t.Fatalf("Write(%q) = %d, %v", m, n, err)
				}
			}
			if got.String() != tt.want {
				t.Errorf("got %q\nwant %q", got.String(), tt.want)
			}
		})
	}
}

package supervisor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLineNumbers(t *testing.T) {
	tests := []struct {
		name   string
		start  lineNumbers
		in     []int64
		lost   int64 // total reported lost
		repeat int   // lines reported as repeats
	}{
		{"gapless", lineNumbers{known: true}, []int64{1, 2, 3}, 0, 0},
		{"first lines lost", lineNumbers{known: true}, []int64{4, 5}, 3, 0},
		{"gap in the middle", lineNumbers{known: true}, []int64{1, 2, 10, 11}, 7, 0},
		{"repeats", lineNumbers{known: true}, []int64{1, 2, 2, 1, 3}, 0, 2},
		{"unnumbered lines ignored", lineNumbers{known: true}, []int64{0, 1, 0, 2}, 0, 0},
		{"restart with a known number", lineNumbers{last: 40, known: true}, []int64{41, 45}, 3, 0},
		{"restart with an unknown number", lineNumbers{}, []int64{41, 42, 44}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.start
			var lost int64
			repeats := 0
			for _, n := range tt.in {
				lo, rep := l.check(n)
				lost += lo
				if rep {
					repeats++
				}
			}
			if lost != tt.lost || repeats != tt.repeat {
				t.Errorf("lost %d repeats %d, want %d and %d", lost, repeats, tt.lost, tt.repeat)
			}
		})
	}
}

func TestPositionForKeepsLineNumbers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.pos")
	m := openSeqMap(path)
	m.record(1, logPos{At: time.Unix(0, 100), N: 3})
	m.record(2, logPos{At: time.Unix(0, 200), N: 7})
	m.record(3, logPos{At: time.Unix(0, 300), N: 9})
	m.close()
	tests := []struct {
		acked int64
		want  logPos
	}{
		{0, logPos{}},
		{1, logPos{At: time.Unix(0, 100), N: 3}},
		{2, logPos{At: time.Unix(0, 200), N: 7}},
		{9, logPos{At: time.Unix(0, 300), N: 9}},
	}
	for _, tt := range tests {
		if got := positionFor(path, tt.acked); !got.At.Equal(tt.want.At) || got.N != tt.want.N {
			t.Errorf("acked %d: %+v, want %+v", tt.acked, got, tt.want)
		}
	}
	// A record written before lines were numbered has no third field.
	old := filepath.Join(t.TempDir(), "old.pos")
	if err := os.WriteFile(old, []byte("1 100\n2 200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := positionFor(old, 2); !got.At.Equal(time.Unix(0, 200)) || got.N != 0 {
		t.Errorf("old record: %+v", got)
	}
}

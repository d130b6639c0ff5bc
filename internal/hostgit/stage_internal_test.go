package hostgit

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRaw(t *testing.T) {
	t.Parallel()
	blob := strings.Repeat("a", 40)
	zero := strings.Repeat("0", 40)
	cases := []struct {
		name      string
		in        string
		want      []Change
		wantBlobs []string
		wantErr   bool
	}{
		{"empty", "", nil, nil, false},
		{"add modify delete gitlink",
			":000000 100644 " + zero + " " + blob + " A\x00new\nline\x00" +
				":100644 100755 " + blob + " " + blob + " M\x00x\x00" +
				":100644 000000 " + blob + " " + zero + " D\x00gone\x00" +
				":000000 160000 " + zero + " " + blob + " A\x00sub\x00",
			[]Change{{Path: "new\nline", Status: "A", Mode: ModeFile}, {Path: "x", Status: "M", Mode: ModeExec},
				{Path: "gone", Status: "D"}, {Path: "sub", Status: "A", Mode: ModeGitlink}},
			[]string{blob, blob, "", blob}, false},
		{"score stripped", ":100644 100644 " + blob + " " + blob + " M100\x00x\x00",
			[]Change{{Path: "x", Status: "M", Mode: ModeFile}}, []string{blob}, false},
		{"truncated", ":000000 100644 " + zero + " " + blob + " A", nil, nil, true},
		{"no path", ":000000 100644 " + zero + " " + blob + " A\x00", nil, nil, true},
		{"no colon", "000000 100644 " + zero + " " + blob + " A\x00x\x00", nil, nil, true},
		{"rename", ":100644 100644 " + blob + " " + blob + " R100\x00a\x00b\x00", nil, nil, true},
		{"short record", ":000000 100644 A\x00x\x00", nil, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, blobs, err := parseRaw(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if !slices.Equal(got, c.want) || !slices.Equal(blobs, c.wantBlobs) {
				t.Fatalf("got %+v %v, want %+v %v", got, blobs, c.want, c.wantBlobs)
			}
		})
	}
}

func FuzzParseRaw(f *testing.F) {
	f.Add(":000000 100644 " + strings.Repeat("0", 40) + " " + strings.Repeat("a", 40) + " A\x00x\x00")
	f.Add(":\x00\x00")
	f.Fuzz(func(t *testing.T, in string) {
		changes, blobs, err := parseRaw(in)
		if err == nil && len(changes) != len(blobs) {
			t.Fatalf("%d changes, %d blobs", len(changes), len(blobs))
		}
	})
}

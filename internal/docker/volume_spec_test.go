package docker

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestVolumeSpecRejects(t *testing.T) {
	dir := t.TempDir()
	ov := func(lower, upper, work string) *Overlay { return &Overlay{Lower: lower, Upper: upper, Work: work} }
	good := ov(filepath.Join(dir, "lower"), filepath.Join(dir, "up"), filepath.Join(dir, "work"))
	tests := []struct {
		name string
		v    VolumeMount
		want string
	}{
		{"empty name", VolumeMount{Target: "/x"}, "not a valid volume name"},
		{"path as name", VolumeMount{Name: "/var/lib/x", Target: "/x"}, "not a valid volume name"},
		{"relative target", VolumeMount{Name: "v1", Target: "x"}, "not an absolute path"},
		{"root target", VolumeMount{Name: "v1", Target: "/"}, "target \"/\""},
		{"socket target", VolumeMount{Name: "v1", Target: "/var/run/docker.sock"}, "engine socket"},
		{"relative lower", VolumeMount{Name: "v1", Target: "/x", Overlay: ov("lower", good.Upper, good.Work)}, "not an absolute path"},
		{"comma in lower", VolumeMount{Name: "v1", Target: "/x", Overlay: ov(dir+"/a,b", good.Upper, good.Work)}, "contains ','"},
		{"colon in upper", VolumeMount{Name: "v1", Target: "/x", Overlay: ov(good.Lower, dir+"/a:b", good.Work)}, "contains ','"},
		{"host root lower", VolumeMount{Name: "v1", Target: "/x", Overlay: ov("/", good.Upper, good.Work)}, "engine socket"},
		{"proc lower", VolumeMount{Name: "v1", Target: "/x", Overlay: ov("/proc/1", good.Upper, good.Work)}, "under /proc"},
		{"work inside upper", VolumeMount{Name: "v1", Target: "/x", Overlay: ov(good.Lower, good.Upper, good.Upper+"/w")}, "separate folders"},
		{"same upper and work", VolumeMount{Name: "v1", Target: "/x", Overlay: ov(good.Lower, good.Upper, good.Upper)}, "separate folders"},
		{"upper inside lower", VolumeMount{Name: "v1", Target: "/x", Overlay: ov(good.Lower, good.Lower+"/up", good.Work)}, "contain each other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			s.Volumes = []VolumeMount{tc.v}
			_, _, err := s.build(nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("build: %v, want an error with %q", err, tc.want)
			}
		})
	}

	s := validSpec()
	s.Volumes = []VolumeMount{{Name: "trakkar-cache-abc-web-1-agent-npm", Target: "/trakkar/cache/npm/"}, {Name: "v.2", Target: "/w/nm", Overlay: good, ReadOnly: true}}
	_, hc, err := s.build(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hc.Mounts) != 2 || hc.Mounts[0].Type != "volume" || hc.Mounts[0].Source != "trakkar-cache-abc-web-1-agent-npm" ||
		hc.Mounts[0].Target != "/trakkar/cache/npm" || !hc.Mounts[1].ReadOnly {
		t.Fatalf("mounts %+v", hc.Mounts)
	}
	if o := good.options(); o["type"] != "overlay" || o["o"] != "lowerdir="+good.Lower+",upperdir="+good.Upper+",workdir="+good.Work {
		t.Fatalf("overlay options %v", o)
	}
}

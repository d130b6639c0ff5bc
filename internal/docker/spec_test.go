package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{Image: "img:1", User: "1000:1000"}
}

func TestSpecBuildRejects(t *testing.T) {
	dir := t.TempDir()
	sockLink := filepath.Join(dir, "sock")
	if err := os.Symlink("/var/run/docker.sock", sockLink); err != nil {
		t.Fatal(err)
	}
	runLink := filepath.Join(dir, "run")
	if err := os.Symlink("/run", runLink); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"empty image", func(s *Spec) { s.Image = " " }, "image is empty"},
		{"empty user", func(s *Spec) { s.User = "" }, "user is empty"},
		{"root uid", func(s *Spec) { s.User = "0:1000" }, "uid 0"},
		{"root uid padded", func(s *Spec) { s.User = "00:1000" }, "uid 0"},
		{"root gid", func(s *Spec) { s.User = "1000:0" }, "gid 0"},
		{"root name", func(s *Spec) { s.User = "root" }, "uid:gid"},
		{"named user", func(s *Spec) { s.User = "agent:agent" }, "not a number"},
		{"uid only", func(s *Spec) { s.User = "1000" }, "uid:gid"},
		{"negative uid", func(s *Spec) { s.User = "-1:1000" }, "not a number"},
		{"network host", func(s *Spec) { s.Network = "host" }, "network \"host\""},
		{"network HOST", func(s *Spec) { s.Network = "HOST" }, "network \"host\""},
		{"network container", func(s *Spec) { s.Network = "container:abc" }, "another container"},
		{"relative source", func(s *Spec) { s.Mounts = []Mount{{Source: "work", Target: "/workspace"}} }, "not an absolute path"},
		{"dot source", func(s *Spec) { s.Mounts = []Mount{{Source: "./work", Target: "/workspace"}} }, "not an absolute path"},
		{"relative target", func(s *Spec) { s.Mounts = []Mount{{Source: dir, Target: "workspace"}} }, "not an absolute path"},
		{"root target", func(s *Spec) { s.Mounts = []Mount{{Source: dir, Target: "/"}} }, "target \"/\""},
		{"docker sock", func(s *Spec) { s.Mounts = []Mount{{Source: "/var/run/docker.sock", Target: "/x"}} }, "engine socket"},
		{"run docker sock", func(s *Spec) { s.Mounts = []Mount{{Source: "/run/docker.sock", Target: "/x"}} }, "engine socket"},
		{"rootless sock", func(s *Spec) { s.Mounts = []Mount{{Source: "/run/user/1000/docker.sock", Target: "/x"}} }, "engine socket"},
		{"sock target", func(s *Spec) { s.Mounts = []Mount{{Source: dir, Target: "/var/run/docker.sock"}} }, "engine socket"},
		{"unclean sock", func(s *Spec) { s.Mounts = []Mount{{Source: "/var/run/../run/docker.sock", Target: "/x"}} }, "engine socket"},
		{"socket dir", func(s *Spec) { s.Mounts = []Mount{{Source: "/var/run", Target: "/x"}} }, "contains the engine socket"},
		{"host root", func(s *Spec) { s.Mounts = []Mount{{Source: "/", Target: "/host"}} }, "contains the engine socket"},
		{"symlink to sock", func(s *Spec) { s.Mounts = []Mount{{Source: sockLink, Target: "/x"}} }, "via symlink"},
		{"symlink to run", func(s *Spec) { s.Mounts = []Mount{{Source: runLink, Target: "/x"}} }, "via symlink"},
		{"proc", func(s *Spec) { s.Mounts = []Mount{{Source: "/proc/1", Target: "/x"}} }, "under /proc"},
		{"dev", func(s *Spec) { s.Mounts = []Mount{{Source: "/dev", Target: "/x"}} }, "under /dev"},
		{"extra socket", func(s *Spec) { s.Mounts = []Mount{{Source: "/srv/engine/api.sock", Target: "/x"}} }, "engine socket"},
		{"relative tmpfs", func(s *Spec) { s.Tmpfs = map[string]string{"tmp": ""} }, "tmpfs target"},
		{"root tmpfs", func(s *Spec) { s.Tmpfs = map[string]string{"/": ""} }, "tmpfs target \"/\""},
		{"relative workdir", func(s *Spec) { s.WorkingDir = "work" }, "working dir"},
		{"negative memory", func(s *Spec) { s.Resources.MemoryBytes = -1 }, "negative resource"},
		{"negative pids", func(s *Spec) { s.Resources.PidsLimit = -1 }, "negative resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.edit(&s)
			_, _, err := s.build([]string{"/srv/engine/api.sock"})
			if err == nil {
				t.Fatalf("build accepted %+v; want error containing %q", s, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestSpecBuildHardening(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name        string
		spec        Spec
		wantNet     string
		wantMem     int64
		wantCPU     int64
		wantPids    int64
		wantTmp     string
		wantTmpfsNo int
	}{
		{
			name:    "defaults",
			spec:    validSpec(),
			wantNet: "default", wantMem: DefaultMemoryBytes, wantCPU: DefaultNanoCPUs, wantPids: DefaultPidsLimit,
			wantTmp: DefaultTmpOpts, wantTmpfsNo: 1,
		},
		{
			name: "explicit",
			spec: Spec{
				Image: "img:1", User: "1000:1000", Network: "none",
				Mounts:    []Mount{{Source: dir + "/", Target: "/workspace/"}},
				Tmpfs:     map[string]string{"/tmp/": "rw,size=1m", "/home/agent": "rw,uid=1000"},
				Resources: Resources{MemoryBytes: 64 << 20, NanoCPUs: 5e8, PidsLimit: 32},
			},
			wantNet: "none", wantMem: 64 << 20, wantCPU: 5e8, wantPids: 32, wantTmp: "rw,size=1m", wantTmpfsNo: 2,
		},
		{
			name:    "named network",
			spec:    Spec{Image: "img:1", User: "1:2", Network: "trakkar-egress"},
			wantNet: "trakkar-egress", wantMem: DefaultMemoryBytes, wantCPU: DefaultNanoCPUs, wantPids: DefaultPidsLimit,
			wantTmp: DefaultTmpOpts, wantTmpfsNo: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, hc, err := tt.spec.build(nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.User != tt.spec.User || cfg.Image != tt.spec.Image {
				t.Errorf("config user/image = %q/%q", cfg.User, cfg.Image)
			}
			if len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || len(hc.CapAdd) != 0 {
				t.Errorf("caps drop=%v add=%v", hc.CapDrop, hc.CapAdd)
			}
			if len(hc.SecurityOpt) != 1 || hc.SecurityOpt[0] != "no-new-privileges:true" {
				t.Errorf("security opts %v", hc.SecurityOpt)
			}
			if !hc.ReadonlyRootfs || hc.Privileged || hc.Init == nil || !*hc.Init {
				t.Errorf("readonly=%v privileged=%v init=%v", hc.ReadonlyRootfs, hc.Privileged, hc.Init)
			}
			if string(hc.IpcMode) != "private" || hc.PidMode != "" || hc.UTSMode != "" || hc.UsernsMode != "" {
				t.Errorf("namespaces ipc=%q pid=%q uts=%q userns=%q", hc.IpcMode, hc.PidMode, hc.UTSMode, hc.UsernsMode)
			}
			if string(hc.NetworkMode) != tt.wantNet {
				t.Errorf("network %q, want %q", hc.NetworkMode, tt.wantNet)
			}
			if hc.Memory != tt.wantMem || hc.MemorySwap != tt.wantMem || hc.NanoCPUs != tt.wantCPU ||
				hc.PidsLimit == nil || *hc.PidsLimit != tt.wantPids {
				t.Errorf("resources mem=%d swap=%d cpu=%d pids=%v", hc.Memory, hc.MemorySwap, hc.NanoCPUs, hc.PidsLimit)
			}
			if hc.Tmpfs["/tmp"] != tt.wantTmp || len(hc.Tmpfs) != tt.wantTmpfsNo {
				t.Errorf("tmpfs %v", hc.Tmpfs)
			}
			if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != LogMaxSize ||
				hc.LogConfig.Config["max-file"] != LogMaxFile {
				t.Errorf("log config %+v", hc.LogConfig)
			}
			if len(hc.Ulimits) != 1 || hc.Ulimits[0].Name != "nofile" || hc.Ulimits[0].Hard != NofileLimit {
				t.Errorf("ulimits %v", hc.Ulimits)
			}
			if len(hc.Devices) != 0 || len(hc.PortBindings) != 0 || hc.PublishAllPorts || len(hc.Binds) != 0 {
				t.Errorf("devices=%v ports=%v publishAll=%v binds=%v", hc.Devices, hc.PortBindings, hc.PublishAllPorts, hc.Binds)
			}
			for _, m := range hc.Mounts {
				if m.Source != filepath.Clean(m.Source) || m.Target != filepath.Clean(m.Target) || m.Type != "bind" {
					t.Errorf("mount not cleaned or not bind: %+v", m)
				}
			}
		})
	}
}

func TestSpecBuildCopiesCallerData(t *testing.T) {
	s := validSpec()
	s.Labels = map[string]string{"a": "1"}
	s.Cmd = []string{"x"}
	s.Entrypoint = []string{"/bin/sh"}
	cfg, _, err := s.build(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Labels["a"] = "2"
	s.Cmd[0] = "y"
	s.Entrypoint[0] = "/bin/bash"
	if cfg.Labels["a"] != "1" || cfg.Cmd[0] != "x" || cfg.Entrypoint[0] != "/bin/sh" {
		t.Fatalf("config shares caller data: labels=%v cmd=%v", cfg.Labels, cfg.Cmd)
	}
}

// OwnInit drops the engine's init (the worker reaps instead) and LogMaxSize
// shrinks the log; the rest of the hardening stays.
func TestSpecOwnInitAndLogSize(t *testing.T) {
	tests := []struct {
		name     string
		own      bool
		size     string
		wantInit bool
		wantSize string
	}{
		{"defaults", false, "", true, LogMaxSize},
		{"own init", true, "", false, LogMaxSize},
		{"small log", false, "64k", true, "64k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			s.OwnInit, s.LogMaxSize = tt.own, tt.size
			_, hc, err := s.build(nil)
			if err != nil {
				t.Fatal(err)
			}
			if hc.Init == nil || *hc.Init != tt.wantInit {
				t.Errorf("init %v, want %v", hc.Init, tt.wantInit)
			}
			if hc.LogConfig.Config["max-size"] != tt.wantSize || hc.LogConfig.Config["max-file"] != LogMaxFile {
				t.Errorf("log config %v", hc.LogConfig.Config)
			}
			if !hc.ReadonlyRootfs || len(hc.CapDrop) != 1 {
				t.Errorf("hardening lost: readonly=%v capdrop=%v", hc.ReadonlyRootfs, hc.CapDrop)
			}
		})
	}
}

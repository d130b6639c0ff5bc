package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/docker"
)

func TestTaskNetworkApply(t *testing.T) {
	allow := &Network{
		network: "none",
		env:     []string{"HTTPS_PROXY=http://127.0.0.1:3128"},
		drop:    []string{"ANTHROPIC_API_KEY"},
		mounts:  []docker.Mount{{Source: "/state/egress", Target: egressMount, ReadOnly: true}},
		forward: []string{"127.0.0.1:3128=/trakkar/egress/proxy.sock"},
	}
	wrap := []string{"trakkar-worker", "egress-forward", "--forward", "127.0.0.1:3128=/trakkar/egress/proxy.sock", "--"}
	for _, tc := range []struct {
		name      string
		tn        *Network
		spec      docker.Spec
		wantEntry []string
		wantCmd   []string
		wantEnv   []string
		wantNet   string
		mounts    int
		hosts     string
	}{
		{"open leaves the command alone", &Network{}, docker.Spec{Env: []string{"A=1"}},
			nil, nil, []string{"A=1"}, "", 0, ""},
		{"none", &Network{network: "none", hosts: "/state/hosts/hosts"}, docker.Spec{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"go test"}},
			[]string{"/bin/sh", "-c"}, []string{"go test"}, nil, "none", 0, "/state/hosts/hosts"},
		{"allowlist wraps the image's worker", allow, docker.Spec{Env: []string{"ANTHROPIC_API_KEY=real", "A=1"}},
			append(slices.Clone(wrap), "trakkar-worker"), nil, []string{"A=1", "HTTPS_PROXY=http://127.0.0.1:3128"}, "none", 1, ""},
		{"allowlist wraps a verify step", allow, docker.Spec{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"go test"}},
			append(slices.Clone(wrap), "/bin/sh", "-c"), []string{"go test"}, []string{"HTTPS_PROXY=http://127.0.0.1:3128"}, "none", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			tc.tn.Apply(&spec)
			if !slices.Equal(spec.Entrypoint, tc.wantEntry) || !slices.Equal(spec.Cmd, tc.wantCmd) {
				t.Errorf("entrypoint %q cmd %q, want %q %q", spec.Entrypoint, spec.Cmd, tc.wantEntry, tc.wantCmd)
			}
			if !slices.Equal(spec.Env, tc.wantEnv) || spec.Network != tc.wantNet || len(spec.Mounts) != tc.mounts || spec.HostsFile != tc.hosts {
				t.Errorf("env %q network %q mounts %v hosts %q", spec.Env, spec.Network, spec.Mounts, spec.HostsFile)
			}
			for _, m := range spec.Mounts {
				if !m.ReadOnly {
					t.Errorf("the agent may write the socket folder: %+v", m)
				}
			}
		})
	}
}

// Each container gets a new socket folder: nothing left there by an earlier
// container survives, and only the containers' user may enter it.
func TestEgressDirIsFresh(t *testing.T) {
	b := New(Config{User: "1000:1000"}, nil, nil)
	r := Run{StateDir: t.TempDir()}
	dir, err := b.egressDir(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, proxySocket), []byte("planted"), 0o666); err != nil {
		t.Fatal(err)
	}
	again, err := b.egressDir(r)
	if err != nil || again != dir {
		t.Fatalf("second folder %q %v", again, err)
	}
	ents, _ := os.ReadDir(dir)
	fi, _ := os.Stat(dir)
	if len(ents) != 0 || fi.Mode().Perm() != 0o700 {
		t.Fatalf("folder not fresh: %v entries, mode %v", ents, fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 1000 || st.Gid != 1000) {
		t.Fatalf("folder owned by %d:%d, want the container user 1000:1000", st.Uid, st.Gid)
	}
}

// Each container on no network gets its /etc/hosts written anew in a new
// folder: a link planted where the file was is removed, never followed.
func TestHostsFileIsFresh(t *testing.T) {
	state := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := New(Config{User: "1000:1000", Network: NetworkNone}, nil, nil)
	r := Run{StateDir: state}
	tn, err := b.StartEgress(t.Context(), nil, r, true)
	if err != nil {
		t.Fatal(err)
	}
	if tn.network != "none" || tn.hosts != filepath.Join(state, "hosts", "hosts") {
		t.Fatalf("network %q hosts %q", tn.network, tn.hosts)
	}
	if err := os.Remove(tn.hosts); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, tn.hosts); err != nil {
		t.Fatal(err)
	}
	again, err := b.StartEgress(t.Context(), nil, r, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(again.hosts)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("hosts file %v %v: want a regular file", fi, err)
	}
	got, _ := os.ReadFile(again.hosts)
	if string(got) != loopbackHosts {
		t.Errorf("hosts file holds %q, want %q", got, loopbackHosts)
	}
	if b, _ := os.ReadFile(outside); string(b) != "host secret\n" {
		t.Errorf("the file the link pointed at was written: %q", b)
	}
}

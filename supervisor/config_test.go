package supervisor

import (
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// Every bad value gets its own clear error, naming the option that sets it.
func TestValidateOneErrorPerBadValue(t *testing.T) {
	base := Defaults()
	base.Repo, base.ContainerUser = "/r", "1000:1000"
	cases := []struct {
		name string
		mod  func(*Config)
		want []string // one error each, in order
	}{
		{"valid", func(*Config) {}, nil},
		{"no repo", func(c *Config) { c.Repo = "" }, []string{"repository path is empty"}},
		{"bad provider", func(c *Config) { c.Provider = "codex" }, []string{`unknown provider "codex": use claude_code or cursor`}},
		{"bad publish", func(c *Config) { c.Publish = "mail" }, []string{`unknown --publish "mail": use pr, branch or local`}},
		{"no user", func(c *Config) { c.ContainerUser = "" }, []string{`--container-user must be a numeric non-root uid:gid (got "")`}},
		{"root user", func(c *Config) { c.ContainerUser = "0:0" }, []string{`--container-user must be a numeric non-root uid:gid (got "0:0")`}},
		{"named user", func(c *Config) { c.ContainerUser = "agent:1000" }, []string{"--container-user must be a numeric non-root uid:gid"}},
		{"negative interval", func(c *Config) { c.Interval = -time.Second }, []string{"--interval must not be negative (got -1)"}},
		{"negative timeout", func(c *Config) { c.VerifyTimeout = -5 * time.Second }, []string{"--timeout must not be negative (got -5)"}},
		{"negative concurrency", func(c *Config) { c.MaxConcurrency = -2 }, []string{"--max-concurrency must not be negative (got -2)"}},
		{"negative memory", func(c *Config) { c.Resources.MemoryBytes = -1 << 20 }, []string{"--memory-mb must not be negative (got -1)"}},
		{"negative cpus", func(c *Config) { c.Resources.NanoCPUs = -1.5e9 }, []string{"--cpus must not be negative (got -1.5)"}},
		{"negative free disk", func(c *Config) { c.MinFreeBytes = -1 << 20 }, []string{"--min-free-mb must not be negative (got -1)"}},
		{"negative workspace cap", func(c *Config) { c.MaxWorkspaceMB = -3 }, []string{"--max-workspace-mb must not be negative (got -3)"}},
		{"negative retries", func(c *Config) { c.VerifyRetries = -1 }, []string{"--verify-retries must not be negative (got -1)"}},
		{"long poll too long", func(c *Config) { c.PollWait = 31 * time.Second }, []string{"--poll-wait must be at most 30 (got 31)"}},
		{"no long poll", func(c *Config) { c.PollWait = 0 }, nil},
		{"no fix rounds", func(c *Config) { c.VerifyRetries = 0 }, nil},
		{"concurrency from the agent", func(c *Config) { c.MaxConcurrency = 0 }, nil},
		{"no free disk check", func(c *Config) { c.MinFreeBytes = 0 }, nil},
		{"no workspace cap", func(c *Config) { c.MaxWorkspaceMB = 0 }, nil},
		{"zero interval", func(c *Config) { c.Interval = 0 }, []string{"--interval must not be 0 (seconds between polls"}},
		{"zero timeout", func(c *Config) { c.VerifyTimeout = 0 }, []string{"--timeout must not be 0"}},
		{"zero stop grace", func(c *Config) { c.StopGrace = 0 }, []string{"--stop-grace must not be 0"}},
		{"zero memory", func(c *Config) { c.Resources.MemoryBytes = 0 }, []string{"--memory-mb must not be 0"}},
		{"memory below the floor", func(c *Config) { c.Resources.MemoryBytes = 1 << 20 }, []string{"--memory-mb must be at least 128 (got 1)"}},
		{"zero cpus", func(c *Config) { c.Resources.NanoCPUs = 0 }, []string{"--cpus must not be 0"}},
		{"cpus below the floor", func(c *Config) { c.Resources.NanoCPUs = 1e6 }, []string{"--cpus must be at least 0.01 (got 0.001)"}},
		{"zero pids", func(c *Config) { c.Resources.PidsLimit = 0 }, []string{"--pids-limit must not be 0"}},
		{"pids below the floor", func(c *Config) { c.Resources.PidsLimit = 8 }, []string{"--pids-limit must be at least 64 (got 8)"}},
		{"zero max files", func(c *Config) { c.Policy.MaxFiles = 0 }, []string{"--max-files must not be 0 (0 would refuse every change"}},
		{"zero max file size", func(c *Config) { c.Policy.MaxFileBytes = 0 }, []string{"--max-file-mb must not be 0"}},
		{"absurd concurrency", func(c *Config) { c.MaxConcurrency = 100000 }, []string{"--max-concurrency must be at most 64 (got 100000)"}},
		{"absurd setups at once", func(c *Config) { c.MaxStarting = 65 }, []string{"--max-starting must be at most 64 (got 65)"}},
		{"negative setups at once", func(c *Config) { c.MaxStarting = -1 }, []string{"--max-starting must not be negative (got -1)"}},
		{"absurd retries", func(c *Config) { c.VerifyRetries = 1000 }, []string{"--verify-retries must be at most 20"}},
		{"absurd interval", func(c *Config) { c.Interval = 10 * time.Hour }, []string{"--interval must be at most 3600 (got 36000)"}},
		{"absurd timeout", func(c *Config) { c.VerifyTimeout = 48 * time.Hour }, []string{"--timeout must be at most 86400"}},
		{"absurd max files", func(c *Config) { c.Policy.MaxFiles = 1 << 30 }, []string{"--max-files must be at most 1e+06"}},
		{"malformed image", func(c *Config) { c.Image = "BAD IMAGE" }, []string{`--image "BAD IMAGE" is not a valid image reference`}},
		{"upper-case image", func(c *Config) { c.Image = "Acme/Worker" }, []string{`--image "Acme/Worker" is not a valid image reference`}},
		{"good image", func(c *Config) { c.Image = "registry.local:5000/acme/worker:1.2" }, nil},
		{"bad network", func(c *Config) { c.Network = "bridge" }, []string{`unknown --network "bridge": use open, none or allowlist`}},
		{"bad allowlist entry", func(c *Config) { c.Network = NetworkAllowlist; c.AllowDomains = []string{"http://x.com"} }, []string{"--allow-domain: "}},
		{"pinned key off the allowlist", func(c *Config) { c.PinModelKey = true }, []string{"--pin-model-key needs --network allowlist"}},
		{"share outside the repository", func(c *Config) { c.Share = []string{"../x"} }, []string{`share path "../x" must be relative`}},
		{"two bad values", func(c *Config) { c.Interval = -time.Second; c.VerifyTimeout = -5 * time.Second },
			[]string{"--interval must not be negative", "--timeout must not be negative"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mod(&cfg)
			err := cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", c.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("Validate() = %q: %d errors, want %d", err, len(lines), len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

// CheckHost refuses limits the engine or the disk cannot meet; unknown (zero)
// host values check nothing.
func TestCheckHost(t *testing.T) {
	base := Defaults()
	base.WorktreeRoot = "/r/.trakkar-worktrees"
	host := Host{CPUs: 2, MemoryBytes: 8 << 30, DiskBytes: 100 << 30}
	cases := []struct {
		name string
		mod  func(*Config)
		host Host
		want []string
	}{
		{"defaults fit", func(*Config) {}, host, nil},
		{"all of the engine", func(c *Config) { c.Resources.NanoCPUs = 2e9; c.Resources.MemoryBytes = 8 << 30 }, host, nil},
		{"more cpus than the engine", func(c *Config) { c.Resources.NanoCPUs = 1000e9 }, host, []string{"--cpus 1000 is more than the Docker engine's 2 CPUs"}},
		{"more memory than the engine", func(c *Config) { c.Resources.MemoryBytes = 16 << 30 }, host, []string{"--memory-mb 16384 is more than the Docker engine's 8192 MiB"}},
		{"more free space than the disk", func(c *Config) { c.MinFreeBytes = 99999999999 << 20 }, host,
			[]string{"--min-free-mb 99999999999 is more than the 102400 MiB disk holding /r/.trakkar-worktrees"}},
		{"unknown host", func(c *Config) { c.Resources.NanoCPUs = 1000e9; c.MinFreeBytes = 1 << 50 }, Host{}, nil},
		{"two at once", func(c *Config) { c.Resources.NanoCPUs = 3e9; c.Resources.MemoryBytes = 9 << 30 }, host, []string{"--cpus 3", "--memory-mb 9216"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mod(&cfg)
			err := cfg.CheckHost(c.host)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("CheckHost() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckHost() = nil, want %q", c.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("CheckHost() = %q, want %d errors", err, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d = %q, want %q", i, lines[i], w)
				}
			}
		})
	}
}

// Resolve settles what the agent's settings decide, once: the provider (the
// flag, else the agent's, else claude_code) and the worker image for it.
func TestResolve(t *testing.T) {
	cases := []struct {
		name      string
		provider  string // flag
		image     string // flag
		agent     string // agent's provider
		wantProv  string
		wantImage string
		wantErr   string
	}{
		{"flag wins", ProviderCursor, "", ProviderClaude, ProviderCursor, DefaultImage(ProviderCursor), ""},
		{"agent's setting", "", "", ProviderCursor, ProviderCursor, DefaultImage(ProviderCursor), ""},
		{"neither", "", "", "", ProviderClaude, DefaultImage(ProviderClaude), ""},
		{"explicit image kept", "", "my/worker:1", "", ProviderClaude, "my/worker:1", ""},
		{"agent's provider unsupported", "", "", "codex", "", "", `the agent's provider "codex" is not supported`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Provider: c.provider, Image: c.image}
			err := cfg.Resolve(trakkar.Agent{Provider: c.agent})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Resolve() = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Provider != c.wantProv || cfg.Image != c.wantImage {
				t.Errorf("provider %q image %q, want %q %q", cfg.Provider, cfg.Image, c.wantProv, c.wantImage)
			}
			again := cfg
			if err := again.Resolve(trakkar.Agent{Provider: ProviderCursor}); err != nil || again.Provider != cfg.Provider || again.Image != cfg.Image {
				t.Errorf("a second Resolve changed the config: %q %q, %v", again.Provider, again.Image, err)
			}
		})
	}
}

// Fields left zero get the same defaults the CLI's flags show.
func TestNewFillsDefaults(t *testing.T) {
	s, err := New(Config{Repo: "/r", ContainerUser: "1000:1000", DryRun: true}, Deps{API: meFails{}, Git: nopGit{}})
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	got := s.cfg
	if got.Remote != d.Remote || got.Interval != d.Interval || got.VerifyTimeout != d.VerifyTimeout ||
		got.StopGrace != d.StopGrace || got.Publish != d.Publish || got.WorktreeRoot != WorktreeRoot("/r") {
		t.Errorf("New filled %+v", got)
	}
}

// nopGit is a Git that is never called.
type nopGit struct{ Git }

// An absurd concurrency in the agent's settings is refused like the flag's,
// unless the flag overrides it.
func TestResolveRefusesAbsurdAgentConcurrency(t *testing.T) {
	huge, fine := 100000, 8
	cases := []struct {
		name    string
		flag    int
		agent   *int
		wantErr bool
	}{
		{"agent's absurd value", 0, &huge, true},
		{"flag overrides it", 4, &huge, false},
		{"agent's sane value", 0, &fine, false},
		{"no setting", 0, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{MaxConcurrency: c.flag}
			err := cfg.Resolve(trakkar.Agent{MaxConcurrency: c.agent})
			if (err != nil) != c.wantErr {
				t.Fatalf("Resolve() = %v, want error %v", err, c.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "max concurrency 100000 is more than 64") {
				t.Fatalf("Resolve() = %v", err)
			}
		})
	}
}

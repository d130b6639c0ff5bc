package supervisor

import (
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// Every bad value gets its own clear error, naming the option that sets it.
func TestValidateOneErrorPerBadValue(t *testing.T) {
	base := Config{Repo: "/r", Publish: PublishPR, ContainerUser: "1000:1000"}
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
		{"long poll too long", func(c *Config) { c.PollWait = 31 * time.Second }, []string{"--poll-wait must be between 0 and 30 seconds (got 31)"}},
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

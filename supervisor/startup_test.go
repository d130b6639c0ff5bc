package supervisor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// meFails is a Trakkar whose /me no longer answers; everything else is idle.
type meFails struct{ API }

func (meFails) Me(context.Context) (trakkar.Agent, error) {
	return trakkar.Agent{}, errors.New("trakkar went away")
}

func (meFails) Queued(context.Context, time.Duration, int) ([]trakkar.Run, error) { return nil, nil }

// Settings read once at startup are not asked for again: Trakkar going away
// between the startup probe and Run must not leave Run retrying /me.
func TestRunUsesTheAgentReadAtStartup(t *testing.T) {
	t.Parallel()
	g, err := hostgit.New(hostgit.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		agent   *trakkar.Agent
		wantErr bool
	}{
		{"read at startup", &trakkar.Agent{Name: "a", Provider: ProviderClaude}, false},
		{"not read yet", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Repo: t.TempDir(), Remote: "origin", Provider: ProviderClaude, DryRun: true, Once: true, Publish: PublishLocal,
				Runner: RunnerInfo{ID: "rnr_unit", Hostname: "h", Version: "test"}, ContainerUser: "1000:1000"}
			s, err := New(cfg, Deps{API: meFails{}, Git: g, Agent: c.agent})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Run(context.Background()); (err != nil) != c.wantErr {
				t.Fatalf("Run: %v, want error %v", err, c.wantErr)
			}
		})
	}
}

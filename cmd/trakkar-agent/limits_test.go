package main

import (
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/trakkar/trakkar-agent/supervisor"
)

// On an engine smaller than the default limits the defaults shrink to fit;
// a value the user set is kept, for CheckHost to refuse.
func TestFitDefaultLimits(t *testing.T) {
	small := supervisor.Host{CPUs: 1, MemoryBytes: 2000 << 20}
	cases := []struct {
		name      string
		args      []string
		host      supervisor.Host
		wantCPUs  float64
		wantMemMB int64
		wantNote  bool
		wantRefus bool
	}{
		{"defaults fit a big engine", nil, supervisor.Host{CPUs: 8, MemoryBytes: 64 << 30}, 2, 4096, false, false},
		{"defaults shrink on a small engine", nil, small, 1, 2000, true, false},
		{"unknown engine", nil, supervisor.Host{}, 2, 4096, false, false},
		{"set values are kept", []string{"--cpus", "2", "--memory-mb", "4096"}, small, 2, 4096, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ran := false
			app := &cli.App{Flags: runFlags(), Action: func(ctx *cli.Context) error {
				ran = true
				st, err := checkFlags(ctx)
				if err != nil {
					return err
				}
				note := fitDefaultLimits(ctx, &st.cfg, c.host)
				if got := float64(st.cfg.Resources.NanoCPUs) / 1e9; got != c.wantCPUs {
					t.Errorf("cpus %g, want %g", got, c.wantCPUs)
				}
				if got := st.cfg.Resources.MemoryBytes >> 20; got != c.wantMemMB {
					t.Errorf("memory %d MiB, want %d", got, c.wantMemMB)
				}
				if (note != "") != c.wantNote {
					t.Errorf("note %q, want one: %v", note, c.wantNote)
				}
				if err := st.cfg.CheckHost(c.host); (err != nil) != c.wantRefus {
					t.Errorf("CheckHost() = %v, want refused: %v", err, c.wantRefus)
				}
				return nil
			}}
			if err := app.Run(append([]string{"trakkar-agent", "--token", "t"}, c.args...)); err != nil || !ran {
				t.Fatalf("run: %v", err)
			}
		})
	}
}

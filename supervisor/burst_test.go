package supervisor_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// countingGit is the real host git, counting fetches of the remote.
type countingGit struct {
	*hostgit.Git
	fetches atomic.Int32
}

func (g *countingGit) Fetch(ctx context.Context, repo, remote string, auth hostgit.Auth) error {
	g.fetches.Add(1)
	return g.Git.Fetch(ctx, repo, remote, auth)
}

// TestBurstSharesOneFetch: a burst of claims shares one fetch of the remote,
// and every task still gets its own worktree and publishes.
func TestBurstSharesOneFetch(t *testing.T) {
	parallel(t)
	const n = 8
	e := newFakeEnv(t, trakkar.Agent{})
	for i := range n {
		e.task(fmt.Sprintf("WEB-%d", i+1))
	}
	hg, err := hostgit.New(hostgit.Options{StateDir: t.TempDir(), Logger: e.log.Named("git")})
	if err != nil {
		t.Fatal(err)
	}
	g := &countingGit{Git: hg}
	cfg := e.config(func(c *supervisor.Config) {
		c.MaxConcurrency = n
		// Generous, so a loaded machine's slow claims still land in one
		// burst; TestFetchGroup covers claims outside the window.
		c.FetchShare = time.Minute
	})
	sup, err := supervisor.New(cfg, supervisor.Deps{API: e.api, Runtime: e.rt, Git: g, Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sup.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rv := e.runOf(fmt.Sprintf("WEB-%d", i+1))
		if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
			t.Fatalf("WEB-%d: %+v; events:\n%s", i+1, rv.Completion, texts(rv.Events))
		}
		if !strings.Contains(texts(rv.Events), "Pushed branch") {
			t.Fatalf("WEB-%d not pushed:\n%s", i+1, texts(rv.Events))
		}
	}
	if got := g.fetches.Load(); got != 1 {
		t.Fatalf("%d fetches for a burst of %d claims, want 1", got, n)
	}
}

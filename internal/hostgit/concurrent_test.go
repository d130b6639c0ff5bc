package hostgit_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// TestFetchBesideWorktreeAdds: fetches running while other worktrees are
// added (and removed) all succeed: a worktree being registered must never be
// seen half made by a fetch's connectivity check ("bad object
// worktrees/<id>/HEAD"), and every add gets a clean checkout.
func TestFetchBesideWorktreeAdds(t *testing.T) {
	f, g, c := newRepo(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	wts := make([]hostgit.Worktree, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			wt, err := g.AddWorktree(c, f.clone, filepath.Join(f.clone, ".trakkar-worktrees", fmt.Sprint("t", i)), fmt.Sprint("trakkar/t-", i), "origin/main")
			if err != nil {
				errs <- err
				return
			}
			wts[i] = wt
		}()
		go func() {
			defer wg.Done()
			for range 3 {
				if err := g.Fetch(c, f.clone, "origin", hostgit.Auth{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, wt := range wts {
		if s := rawGit(t, "/", "--git-dir="+wt.GitDir, "--work-tree="+wt.Path, "status", "--porcelain"); s != "" {
			t.Fatalf("%s: %q", wt.Path, s)
		}
	}
}

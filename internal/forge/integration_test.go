package forge_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// The publish path end to end over real HTTP: clone from the fake's smart-HTTP URL,
// worktree, commit, push with the token, open the PR through the REST API.
func TestPublishThroughHostgitAndForge(t *testing.T) {
	t.Parallel()
	const token = "ghp_integrationToken_42"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fg := fakegithub.New(t, token)
	cloneURL := fg.AddRepo(t, "acme", "app", map[string]string{"README.md": "hello\n", "src/a.go": "package a\n"})

	clone := filepath.Join(t.TempDir(), "app")
	cmd := exec.Command("git", "clone", "--quiet", cloneURL, clone)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}

	g, err := hostgit.New(hostgit.Options{StateDir: t.TempDir(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	auth := hostgit.Auth{Token: token}
	remoteURL, err := g.RemoteURL(ctx, clone, "origin")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := forge.ParseRemote(remoteURL)
	if err != nil {
		t.Fatal(err)
	}
	if repo.Owner != "acme" || repo.Name != "app" {
		t.Fatalf("ParseRemote(%s) = %+v", remoteURL, repo)
	}
	if err := g.Fetch(ctx, clone, "origin", auth); err != nil {
		t.Fatal(err)
	}
	base, err := g.DefaultBranch(ctx, clone, "origin")
	if err != nil || base != "main" {
		t.Fatalf("DefaultBranch = %q, %v", base, err)
	}
	branch, err := hostgit.BranchName("", "ENG-7", "Add greeting")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Exclude(ctx, clone, "/.trakkar-worktrees/"); err != nil {
		t.Fatal(err)
	}
	wt, err := g.AddWorktree(ctx, clone, filepath.Join(clone, ".trakkar-worktrees", "ENG-7"), branch, "origin/"+base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wt.Path, "greeting.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok, sha, err := g.CommitAll(ctx, wt, "ENG-7: Add greeting")
	if err != nil || !ok {
		t.Fatalf("CommitAll = %v, %v", ok, err)
	}

	if err := g.Push(ctx, clone, "origin", branch, hostgit.Auth{}); err == nil {
		t.Fatal("push without a token succeeded")
	}
	if err := g.Push(ctx, clone, "origin", branch, auth); err != nil {
		t.Fatal(err)
	}
	gotSHA, files := fg.Branch(t, "acme", "app", branch)
	if gotSHA != sha || files["greeting.txt"] != "hi\n" || files["README.md"] != "hello\n" || len(files) != 3 {
		t.Fatalf("pushed branch = %s %v; want %s with 3 files", gotSHA, files, sha)
	}
	if exists, err := g.RemoteBranchExists(ctx, clone, "origin", branch); err != nil || !exists {
		t.Fatalf("RemoteBranchExists after push = %v, %v", exists, err)
	}

	gh := &forge.GitHub{BaseURL: fg.URL(), Token: token, Logger: zaptest.NewLogger(t)}
	pr, err := gh.CreatePR(ctx, repo, forge.NewPR{Title: "ENG-7: Add greeting", Body: "Done.", Head: branch, Base: base, Draft: true})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number != 1 || pr.Head != branch || pr.Base != "main" || !pr.Draft || pr.URL != fg.URL()+"/acme/app/pull/1" {
		t.Fatalf("PR = %+v", pr)
	}
	recorded := fg.PRs("acme", "app")
	if len(recorded) != 1 || recorded[0].Title != "ENG-7: Add greeting" || recorded[0].Body != "Done." {
		t.Fatalf("recorded PRs = %+v", recorded)
	}
	if err := g.RemoveWorktree(ctx, clone, wt); err != nil {
		t.Fatal(err)
	}
}

package hostgit_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// Version answers with a dotted number; Excluded sees what Exclude wrote and
// nothing else.
func TestVersionAndExcluded(t *testing.T) {
	ctx := context.Background()
	g, err := hostgit.New(hostgit.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := g.Version(ctx)
	if err != nil || !strings.Contains(v, ".") || strings.ContainsAny(v, " \n") {
		t.Fatalf("Version() = %q, %v", v, err)
	}
	repo := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	for _, step := range []struct {
		exclude string
		want    bool
	}{{"", false}, {"/other/", false}, {"/.trakkar-worktrees/", true}} {
		if step.exclude != "" {
			if err := g.Exclude(ctx, repo, step.exclude); err != nil {
				t.Fatal(err)
			}
		}
		got, err := g.Excluded(ctx, repo, "/.trakkar-worktrees/")
		if err != nil || got != step.want {
			t.Fatalf("after excluding %q: Excluded() = %v, %v; want %v", step.exclude, got, err, step.want)
		}
	}
}

package forge_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/forge"
)

// Access reports the token's push permission, and a token or repository
// GitHub does not know is an error.
func TestAccess(t *testing.T) {
	t.Parallel()
	const token = "ghp_accessToken"
	fg := fakegithub.New(t, token)
	fg.AddRepo(t, "acme", "app", map[string]string{"README.md": "hi\n"})
	repo := forge.Repo{Owner: "acme", Name: "app"}
	cases := []struct {
		name     string
		token    string
		repo     forge.Repo
		readOnly bool
		wantPush bool
		wantErr  string
	}{
		{"push", token, repo, false, true, ""},
		{"read only", token, repo, true, false, ""},
		{"bad token", "ghp_wrong", repo, false, false, "401"},
		{"unknown repository", token, forge.Repo{Owner: "acme", Name: "nope"}, false, false, "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fg.SetReadOnly(c.readOnly)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			g := &forge.GitHub{BaseURL: fg.URL(), Token: c.token, HTTP: &http.Client{Timeout: 5 * time.Second}}
			a, err := g.Access(ctx, c.repo)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Access() = %+v, %v; want error %q", a, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Push != c.wantPush || a.FullName != "acme/app" {
				t.Fatalf("Access() = %+v, want push %v", a, c.wantPush)
			}
		})
	}
}

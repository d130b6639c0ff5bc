package forge

import (
	"strings"
	"testing"
)

func TestParseRemote(t *testing.T) {
	t.Parallel()
	gh := func(o, n string) Repo { return Repo{Owner: o, Name: n, Host: "github.com"} }
	cases := []struct {
		in   string
		want Repo
		err  string // substring of the error; "" means success
	}{
		{"https://github.com/acme/app", gh("acme", "app"), ""},
		{"https://github.com/acme/app.git", gh("acme", "app"), ""},
		{"https://github.com/acme/app/", gh("acme", "app"), ""},
		{"https://github.com/acme/app.git/", gh("acme", "app"), ""},
		{"https://GitHub.com/Acme/App.git", Repo{Owner: "Acme", Name: "App", Host: "github.com"}, ""},
		{"https://x-access-token:ghp_secret@github.com/acme/app.git", gh("acme", "app"), ""},
		{"git@github.com:acme/app.git", gh("acme", "app"), ""},
		{"git@github.com:acme/app", gh("acme", "app"), ""},
		{"ssh://git@github.com/acme/app.git", gh("acme", "app"), ""},
		{"ssh://git@github.com:22/acme/app.git", gh("acme", "app"), ""},
		{"http://127.0.0.1:1234/acme/app.git", Repo{Owner: "acme", Name: "app", Host: "127.0.0.1:1234"}, ""},
		{"https://ghe.example.com/team/svc.git", Repo{Owner: "team", Name: "svc", Host: "ghe.example.com"}, ""},
		{"git@ghe.example.com:team/my.repo_1.git", Repo{Owner: "team", Name: "my.repo_1", Host: "ghe.example.com"}, ""},
		{"", Repo{}, "empty"},
		{"/home/me/repo", Repo{}, "not a URL"},
		{"../repo.git", Repo{}, "not a URL"},
		{"file:///srv/repo.git", Repo{}, "unsupported scheme"},
		{"git://github.com/acme/app.git", Repo{}, "unsupported scheme"},
		{"ext::sh -c touch% /tmp/pwned", Repo{}, "whitespace"},
		{"https://github.com/acme", Repo{}, "not owner/name"},
		{"https://github.com/acme/app/tree/main", Repo{}, "not owner/name"},
		{"https://github.com/acme/app?x=1", Repo{}, "query"},
		{"https://github.com/-acme/app", Repo{}, "invalid owner"},
		{"https://github.com/acme/..", Repo{}, "invalid repository name"},
		{"https://github.com/ac%20me/app", Repo{}, "invalid owner"},
		{"git@github.com:/acme/app.git", Repo{}, "absolute path"},
		{"https:///acme/app", Repo{}, "missing host"},
		{"https://github.com/acme/app\n", gh("acme", "app"), ""}, // surrounding whitespace is trimmed
		{"https://github.com/ac me/app", Repo{}, "whitespace"},
	}
	for _, tc := range cases {
		got, err := ParseRemote(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseRemote(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseRemote(%q) err = %v, want containing %q", tc.in, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "ghp_secret") {
			t.Errorf("error leaks credentials: %v", err)
		}
	}
	if _, err := ParseRemote("https://x:ghp_secret@github.com/acme"); err == nil || strings.Contains(err.Error(), "ghp_secret") {
		t.Errorf("bad URL with credentials: err = %v", err)
	}
}

func TestAPIBaseFor(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"github.com":           "https://api.github.com",
		"ghe.example.com":      "https://ghe.example.com/api/v3",
		"ghe.example.com:8443": "https://ghe.example.com:8443/api/v3",
	}
	for host, want := range cases {
		if got := APIBaseFor(Repo{Owner: "o", Name: "r", Host: host}); got != want {
			t.Errorf("APIBaseFor(%s) = %s, want %s", host, got, want)
		}
	}
}

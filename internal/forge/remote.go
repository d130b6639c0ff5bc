// Package forge talks to GitHub's REST API (github.com or GitHub Enterprise) to find,
// open and update the task's pull request, and resolves the token used for it.
package forge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Repo identifies a repository on a GitHub host.
type Repo struct {
	Owner, Name string
	// Host is the web host, lowercased, with the port for http(s) remotes that name
	// one (ssh ports are dropped: they say nothing about where the API is).
	Host string
}

// String returns "host/owner/name".
func (r Repo) String() string { return r.Host + "/" + r.Owner + "/" + r.Name }

// ParseRemote parses a git remote URL of a GitHub repository:
//
//	https://github.com/o/r(.git)(/)   http://127.0.0.1:1234/o/r.git   https://ghe.example.com/o/r
//	git@github.com:o/r.git            ssh://git@github.com[:22]/o/r.git
//
// Credentials in the URL are dropped. Anything else is rejected.
func ParseRemote(raw string) (Repo, error) {
	r, err := parseRemote(strings.TrimSpace(raw))
	if err != nil {
		return Repo{}, fmt.Errorf("parse remote %q: %w", redactURL(raw), err)
	}
	return r, nil
}

func parseRemote(raw string) (Repo, error) {
	if raw == "" {
		return Repo{}, errors.New("empty url")
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") {
		return Repo{}, errors.New("contains whitespace or control characters")
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		u, err := url.Parse(raw)
		if err != nil {
			return Repo{}, errors.New("malformed url")
		}
		if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return Repo{}, errors.New("unexpected query or fragment")
		}
		if u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh" {
			return Repo{}, fmt.Errorf("unsupported scheme %q (want https, http or ssh)", u.Scheme)
		}
		host := strings.ToLower(u.Hostname())
		if err := validHost(host); err != nil {
			return Repo{}, err
		}
		if p := u.Port(); p != "" && u.Scheme != "ssh" {
			host = net.JoinHostPort(host, p)
		}
		return repoFromPath(host, u.Path)
	}
	// scp-like: [user@]host:owner/name(.git)
	hostPart, path, ok := strings.Cut(raw, ":")
	if !ok || strings.Contains(hostPart, "/") {
		return Repo{}, errors.New("not a URL or scp-like ssh address")
	}
	if _, h, ok := strings.Cut(hostPart, "@"); ok {
		hostPart = h
	}
	host := strings.ToLower(hostPart)
	if err := validHost(host); err != nil {
		return Repo{}, err
	}
	if strings.HasPrefix(path, "/") {
		return Repo{}, errors.New("absolute path in scp-like address")
	}
	return repoFromPath(host, path)
}

func repoFromPath(host, path string) (Repo, error) {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	path = strings.TrimSuffix(path, ".git")
	parts := strings.Split(path, "/")
	if len(parts) != 2 {
		return Repo{}, fmt.Errorf("path %q is not owner/name", path)
	}
	owner, name := parts[0], parts[1]
	if !validOwner(owner) {
		return Repo{}, fmt.Errorf("invalid owner %q", owner)
	}
	if !validName(name) {
		return Repo{}, fmt.Errorf("invalid repository name %q", name)
	}
	return Repo{Owner: owner, Name: name, Host: host}, nil
}

func validHost(h string) error {
	if h == "" {
		return errors.New("missing host")
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':' || r == '[' || r == ']') {
			return fmt.Errorf("invalid host %q", h)
		}
	}
	return nil
}

// validOwner: GitHub user/org names (alphanumerics and hyphens; underscores appear in
// enterprise-managed user names).
func validOwner(s string) bool {
	if s == "" || len(s) > 100 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(isAlnum(r) || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validName: GitHub repository names (alphanumerics, '-', '_', '.'; not "." or "..").
func validName(s string) bool {
	if s == "" || len(s) > 100 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(isAlnum(r) || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// APIBaseFor returns the REST API base URL for r's host: https://api.github.com for
// github.com, https://<host>/api/v3 for GitHub Enterprise Server.
func APIBaseFor(r Repo) string {
	if r.Host == "github.com" {
		return "https://api.github.com"
	}
	return "https://" + r.Host + "/api/v3"
}

// redactURL drops userinfo (which may hold a token) from a URL for error messages.
func redactURL(raw string) string {
	if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		if j := strings.LastIndex(raw, "@"); j > i {
			return raw[:i+3] + "…@" + raw[j+1:]
		}
	}
	return raw
}

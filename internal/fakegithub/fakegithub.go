// Package fakegithub is a test double for GitHub: an httptest server that serves bare
// repositories over git smart HTTP (`git http-backend` through net/http/cgi, pushes
// require the token) and the subset of the REST API the forge package uses
// (create, list and update pull requests). It is a normal package so tests of several
// packages can import it; nothing in production code should.
package fakegithub

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// PR is a recorded pull request.
type PR struct {
	Number  int
	Title   string
	Body    string
	Head    string // branch name, without "owner:"
	Base    string
	Draft   bool
	State   string // "open" or "closed"
	HTMLURL string
}

// Server is a fake GitHub. Safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	root    string // GIT_PROJECT_ROOT: <root>/<owner>/<name>.git
	token   string
	gitPath string
	backend string // git-http-backend
	home    string

	mu       sync.Mutex
	repos    map[string]*repo // "owner/name"
	failures []failure
	requests int // REST requests seen
	updates  []Update
	observe  func(Publish)
	readOnly bool // the token may read but not push (SetReadOnly)
}

// SetReadOnly makes GET /repos/{owner}/{name} report the token without push
// permission, as for a collaborator with read access.
func (s *Server) SetReadOnly(readOnly bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readOnly = readOnly
}

type repo struct {
	owner, name string
	prs         []PR
}

type failure struct {
	status int
}

// New starts a fake GitHub whose REST API and git endpoints accept token. The server is
// closed by t.Cleanup.
func New(t testing.TB, token string) *Server {
	t.Helper()
	return newServer(t, token, nil)
}

func newServer(t testing.TB, token string, ln net.Listener) *Server {
	t.Helper()
	if token == "" {
		t.Fatal("fakegithub: empty token")
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("fakegithub: git not found: %v", err)
	}
	dir := t.TempDir()
	s := &Server{
		root:    filepath.Join(dir, "repos"),
		home:    filepath.Join(dir, "home"),
		token:   token,
		gitPath: gitPath,
		repos:   map[string]*repo{},
	}
	for _, d := range []string{s.root, s.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("fakegithub: %v", err)
		}
	}
	execPath, err := s.git("", nil, "--exec-path")
	if err != nil {
		t.Fatalf("fakegithub: git --exec-path: %v", err)
	}
	s.backend = filepath.Join(strings.TrimSpace(execPath), "git-http-backend")
	if _, err := os.Stat(s.backend); err != nil {
		t.Fatalf("fakegithub: git-http-backend: %v", err)
	}
	s.startOn(t, ln)
	return s
}

// URL is the server's base URL: clone URLs are <URL>/<owner>/<name>.git and the REST
// API lives at the root (<URL>/repos/...).
func (s *Server) URL() string { return s.srv.URL }

// BareDir is the path of the bare repository behind owner/name.
func (s *Server) BareDir(owner, name string) string {
	return filepath.Join(s.root, owner, name+".git")
}

// AddRepo creates a bare repository with one commit on main holding files, served at
// the returned clone URL with push enabled.
func (s *Server) AddRepo(t testing.TB, owner, name string, files map[string]string) string {
	t.Helper()
	if !validName(owner) || !validName(name) {
		t.Fatalf("fakegithub: invalid repo %q/%q", owner, name)
	}
	bare := s.BareDir(owner, name)
	if _, err := s.git("", nil, "init", "--quiet", "--bare", "--initial-branch=main", bare); err != nil {
		t.Fatalf("fakegithub: init: %v", err)
	}
	if _, err := s.git(bare, nil, "config", "http.receivepack", "true"); err != nil {
		t.Fatalf("fakegithub: config: %v", err)
	}
	work := t.TempDir()
	for p, content := range files {
		clean := path.Clean(p)
		if p == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			t.Fatalf("fakegithub: invalid file path %q", p)
		}
		full := filepath.Join(work, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatalf("fakegithub: %v", err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatalf("fakegithub: %v", err)
		}
	}
	index := filepath.Join(t.TempDir(), "index")
	env := []string{"GIT_INDEX_FILE=" + index, "GIT_WORK_TREE=" + work}
	steps := [][]string{
		{"add", "-A"},
		{"commit", "--quiet", "--allow-empty", "-m", "initial commit"},
	}
	for _, args := range steps {
		if _, err := s.git(bare, env, args...); err != nil {
			t.Fatalf("fakegithub: %v", err)
		}
	}
	s.mu.Lock()
	s.repos[owner+"/"+name] = &repo{owner: owner, name: name}
	s.mu.Unlock()
	return s.URL() + "/" + owner + "/" + name + ".git"
}

// PRs returns a copy of the pull requests recorded for owner/name.
func (s *Server) PRs(owner, name string) []PR {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[owner+"/"+name]
	if r == nil {
		return nil
	}
	return append([]PR(nil), r.prs...)
}

// Branch reads a branch of the bare repository: its commit and every file (blobs and
// symlink targets) at that commit.
func (s *Server) Branch(t testing.TB, owner, name, branch string) (string, map[string]string) {
	t.Helper()
	bare := s.BareDir(owner, name)
	out, err := s.git(bare, nil, "rev-parse", "--verify", "--end-of-options", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		t.Fatalf("fakegithub: branch %q: %v", branch, err)
	}
	sha := strings.TrimSpace(out)
	list, err := s.git(bare, nil, "ls-tree", "-r", "-z", "--full-tree", sha)
	if err != nil {
		t.Fatalf("fakegithub: ls-tree: %v", err)
	}
	files := map[string]string{}
	for _, entry := range strings.Split(list, "\x00") {
		if entry == "" {
			continue
		}
		meta, p, ok := strings.Cut(entry, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || f[1] != "blob" {
			continue
		}
		content, err := s.git(bare, nil, "cat-file", "blob", f[2])
		if err != nil {
			t.Fatalf("fakegithub: cat-file %s: %v", p, err)
		}
		files[p] = content
	}
	return sha, files
}

// FailNext makes the next n REST requests fail with status (before auth is checked).
// A 429 or 403 carries "Retry-After: 1".
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.failures = append(s.failures, failure{status: status})
	}
}

// Requests is the number of REST requests received so far.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/repos/") {
		s.serveREST(w, r)
		return
	}
	s.serveGit(w, r)
}

// serveGit hands smart-HTTP requests to git http-backend; pushes need the token.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 3 || !strings.HasSuffix(parts[1], ".git") {
		http.NotFound(w, r)
		return
	}
	owner, name := parts[0], strings.TrimSuffix(parts[1], ".git")
	s.mu.Lock()
	_, known := s.repos[owner+"/"+name]
	s.mu.Unlock()
	if !known {
		http.NotFound(w, r)
		return
	}
	user := ""
	push := parts[2] == "git-receive-pack" || r.URL.Query().Get("service") == "git-receive-pack"
	if push {
		u, pass, ok := r.BasicAuth()
		if !ok || !s.tokenOK(pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="fakegithub"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		user = u
	}
	var ups []Update
	if push && r.Method == http.MethodPost {
		ups = receiveCommands(r)
		for _, u := range ups {
			s.notify(Publish{Kind: "push", Ref: u.Ref, RemoteAddr: u.RemoteAddr})
		}
		defer s.recordUpdates(s.BareDir(owner, name), ups)
	}
	h := &cgi.Handler{
		Path: s.backend,
		Dir:  s.root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user,
			"HOME=" + s.home,
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
		Stderr: &bytes.Buffer{},
	}
	h.ServeHTTP(w, r)
}

func (s *Server) tokenOK(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// git runs git with an isolated environment, optionally against a bare repo.
func (s *Server) git(gitDir string, extraEnv []string, args ...string) (string, error) {
	if gitDir != "" {
		args = append([]string{"--git-dir=" + gitDir}, args...)
	}
	args = append([]string{"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"}, args...)
	cmd := exec.Command(s.gitPath, args...)
	cmd.Dir = s.home
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.home,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Fake GitHub", "GIT_AUTHOR_EMAIL=fake@github.invalid",
		"GIT_COMMITTER_NAME=Fake GitHub", "GIT_COMMITTER_EMAIL=fake@github.invalid",
	}
	cmd.Env = append(env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// branchExists reports whether refs/heads/<branch> exists in owner/name.
func (s *Server) branchExists(owner, name, branch string) bool {
	if branch == "" || strings.HasPrefix(branch, "-") {
		return false
	}
	_, err := s.git(s.BareDir(owner, name), nil, "show-ref", "--verify", "--quiet", "refs/heads/"+branch)
	return err == nil
}

func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

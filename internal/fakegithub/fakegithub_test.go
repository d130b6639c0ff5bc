package fakegithub_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/fakegithub"
)

const token = "fake-token-123"

func git(t *testing.T, dir string, args ...string) error {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("git %s: %s", strings.Join(args, " "), out)
	}
	return err
}

func TestGitOverHTTP(t *testing.T) {
	t.Parallel()
	s := fakegithub.New(t, token)
	url := s.AddRepo(t, "o", "r", map[string]string{"a.txt": "A\n", "dir/b.txt": "B\n"})
	clone := filepath.Join(t.TempDir(), "c")
	if err := git(t, "/", "clone", "--quiet", url, clone); err != nil {
		t.Fatal("anonymous clone failed")
	}
	if b, err := os.ReadFile(filepath.Join(clone, "dir", "b.txt")); err != nil || string(b) != "B\n" {
		t.Fatalf("cloned content = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(clone, "c.txt"), []byte("C\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if git(t, clone, "add", "c.txt") != nil || git(t, clone, "commit", "--quiet", "-m", "c") != nil {
		t.Fatal("commit failed")
	}
	if err := git(t, clone, "push", "--quiet", "origin", "HEAD:refs/heads/topic"); err == nil {
		t.Fatal("push without credentials succeeded")
	}
	withWrong := strings.Replace(url, "http://", "http://x:wrong@", 1)
	if err := git(t, clone, "push", "--quiet", withWrong, "HEAD:refs/heads/topic"); err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	withToken := strings.Replace(url, "http://", "http://anyone:"+token+"@", 1)
	if err := git(t, clone, "push", "--quiet", withToken, "HEAD:refs/heads/topic"); err != nil {
		t.Fatal("push with the token failed")
	}
	sha, files := s.Branch(t, "o", "r", "topic")
	if len(sha) != 40 || len(files) != 3 || files["c.txt"] != "C\n" || files["dir/b.txt"] != "B\n" {
		t.Fatalf("Branch(topic) = %s %v", sha, files)
	}
	if _, err := os.Stat(filepath.Join(s.BareDir("o", "r"), "refs", "heads", "topic")); err != nil {
		t.Fatalf("BareDir does not hold the pushed ref: %v", err)
	}
	if err := git(t, "/", "ls-remote", s.URL()+"/o/missing.git"); err == nil {
		t.Fatal("unknown repo served")
	}
}

func call(t *testing.T, s *fakegithub.Server, method, path, auth, body string) (int, map[string]any, []any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	var list []any
	if json.Unmarshal(raw, &obj) != nil {
		_ = json.Unmarshal(raw, &list)
	}
	return resp.StatusCode, obj, list
}

func TestPullsREST(t *testing.T) {
	t.Parallel()
	s := fakegithub.New(t, token)
	url := s.AddRepo(t, "o", "r", map[string]string{"a": "a"})
	clone := filepath.Join(t.TempDir(), "c")
	if git(t, "/", "clone", "--quiet", url, clone) != nil ||
		git(t, clone, "push", "--quiet", strings.Replace(url, "http://", "http://x:"+token+"@", 1), "HEAD:refs/heads/feat") != nil {
		t.Fatal("setup failed")
	}
	create := `{"title":"T","body":"B","head":"feat","base":"main","draft":true}`

	if code, _, _ := call(t, s, "POST", "/repos/o/r/pulls", "wrong", create); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if code, _, _ := call(t, s, "POST", "/repos/o/x/pulls", token, create); code != 404 {
		t.Fatalf("unknown repo: %d", code)
	}
	if code, obj, _ := call(t, s, "POST", "/repos/o/r/pulls", token, `{"title":"T","head":"nope","base":"main"}`); code != 422 || obj["message"] != "Validation Failed" {
		t.Fatalf("missing head: %d %v", code, obj)
	}
	code, obj, _ := call(t, s, "POST", "/repos/o/r/pulls", token, create)
	if code != 201 || obj["number"] != 1.0 || obj["html_url"] != s.URL()+"/o/r/pull/1" || obj["draft"] != true {
		t.Fatalf("create: %d %v", code, obj)
	}
	code, obj, _ = call(t, s, "POST", "/repos/o/r/pulls", token, strings.Replace(create, `"feat"`, `"o:feat"`, 1))
	if code != 422 || !strings.Contains(toJSON(obj), "A pull request already exists for o:feat.") {
		t.Fatalf("duplicate: %d %v", code, obj)
	}
	if _, _, list := call(t, s, "GET", "/repos/o/r/pulls?state=open&head=o:feat", token, ""); len(list) != 1 {
		t.Fatalf("list by head: %v", list)
	}
	if _, _, list := call(t, s, "GET", "/repos/o/r/pulls?head=o:other", token, ""); len(list) != 0 {
		t.Fatalf("list other head: %v", list)
	}
	if code, obj, _ := call(t, s, "PATCH", "/repos/o/r/pulls/1", token, `{"title":"T2","state":"closed"}`); code != 200 || obj["title"] != "T2" {
		t.Fatalf("patch: %d %v", code, obj)
	}
	if _, _, list := call(t, s, "GET", "/repos/o/r/pulls?state=open", token, ""); len(list) != 0 {
		t.Fatalf("closed PR still listed as open: %v", list)
	}
	if code, _, _ := call(t, s, "PATCH", "/repos/o/r/pulls/9", token, `{}`); code != 404 {
		t.Fatalf("patch unknown: %d", code)
	}
	prs := s.PRs("o", "r")
	if len(prs) != 1 || prs[0].Title != "T2" || prs[0].Body != "B" || prs[0].State != "closed" || prs[0].Head != "feat" {
		t.Fatalf("recorded: %+v", prs)
	}
	s.FailNext(1, 502)
	if code, _, _ := call(t, s, "GET", "/repos/o/r/pulls", token, ""); code != 502 {
		t.Fatalf("injected failure: %d", code)
	}
	if code, _, _ := call(t, s, "GET", "/repos/o/r/pulls", token, ""); code != 200 {
		t.Fatalf("after injected failure: %d", code)
	}
	// Closed PR frees the head for a new one.
	if code, obj, _ := call(t, s, "POST", "/repos/o/r/pulls", token, create); code != 201 || obj["number"] != 2.0 {
		t.Fatalf("re-create after close: %d %v", code, obj)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A fast-forward push, a refused non-fast-forward one and a forced one: only
// the forced one counts as a force push, and every push is observed first.
func TestForcePushDetected(t *testing.T) {
	t.Parallel()
	s := fakegithub.New(t, token)
	url := strings.Replace(s.AddRepo(t, "o", "r", map[string]string{"a.txt": "A\n"}), "http://", "http://u:"+token+"@", 1)
	var seen []fakegithub.Publish
	s.Observe(func(p fakegithub.Publish) { seen = append(seen, p) })
	clone := filepath.Join(t.TempDir(), "c")
	if err := git(t, "/", "clone", "--quiet", url, clone); err != nil {
		t.Fatal(err)
	}
	commit := func(msg string) {
		t.Helper()
		if git(t, clone, "commit", "--quiet", "--allow-empty", "-m", msg) != nil {
			t.Fatal("commit failed")
		}
	}
	commit("one")
	if err := git(t, clone, "push", "--quiet", "origin", "HEAD:refs/heads/topic"); err != nil {
		t.Fatal(err)
	}
	commit("two")
	if err := git(t, clone, "push", "--quiet", "origin", "HEAD:refs/heads/topic"); err != nil {
		t.Fatal(err)
	}
	if n := s.ForcePushes(); n != 0 {
		t.Fatalf("%d force pushes after fast-forward pushes", n)
	}
	if git(t, clone, "reset", "--quiet", "--hard", "HEAD~2") != nil {
		t.Fatal("reset failed")
	}
	commit("rewritten")
	if err := git(t, clone, "push", "--quiet", "origin", "HEAD:refs/heads/topic"); err == nil {
		t.Fatal("a non-fast-forward push without force was accepted")
	}
	if n := s.ForcePushes(); n != 0 {
		t.Fatalf("%d force pushes after a refused push", n)
	}
	if err := git(t, clone, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/topic"); err != nil {
		t.Fatal(err)
	}
	if n := s.ForcePushes(); n != 1 {
		t.Fatalf("%d force pushes, want 1", n)
	}
	// git refuses the plain non-fast-forward push itself: it never arrives.
	if len(seen) != 3 || seen[0].Kind != "push" || seen[0].Ref != "refs/heads/topic" || seen[0].RemoteAddr == "" {
		t.Fatalf("observed %+v, want 3 pushes of refs/heads/topic", seen)
	}
}

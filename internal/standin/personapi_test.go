package standin

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

type createdAnswer struct {
	Task trakkar.Task
	Run  trakkar.Run
}

func TestPersonAPIRoundTrip(t *testing.T) {
	e := newEnv(t)
	status, raw := e.do(t, "POST", "/api/tasks", map[string]any{"key": "P-1", "title": "Fix login", "description": "the **form**", "base_branch": ""})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, raw)
	}
	created := decode[createdAnswer](t, raw)
	if created.Task.Key != "P-1" || created.Task.BaseBranch != nil || created.Run.Status != trakkar.StatusQueued || created.Run.TaskID != created.Task.ID {
		t.Fatalf("created %+v", created)
	}
	if !strings.Contains(string(raw), `"labels":[]`) || !strings.Contains(string(raw), `"messages":[]`) {
		t.Fatalf("empty lists must be [] not null: %s", raw)
	}

	errs := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"duplicate key", "POST", "/api/tasks", map[string]string{"key": "P-1", "title": "again"}, 409, "conflict"},
		{"missing key", "POST", "/api/tasks", map[string]string{"title": "no key"}, 400, "bad_request"},
		{"malformed", "POST", "/api/tasks", `{"key":`, 400, "bad_request"},
		{"unknown task", "GET", "/api/tasks/P-404", nil, 404, "not_found"},
		{"message to unknown task", "POST", "/api/tasks/P-404/messages", map[string]string{"body": "hi"}, 404, "not_found"},
		{"message while queued", "POST", "/api/tasks/P-1/messages", map[string]string{"body": "hi"}, 409, "conflict"},
		{"empty message", "POST", "/api/tasks/P-1/messages", map[string]string{"body": ""}, 400, "bad_request"},
		{"stop unknown", "POST", "/api/tasks/P-404/stop", nil, 404, "not_found"},
		{"unknown endpoint", "GET", "/api/nope", nil, 404, "not_found"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := e.do(t, tc.method, tc.path, tc.body)
			wantError(t, status, raw, tc.status, tc.code)
		})
	}

	// The agent works the run; the person sees it through the API.
	mustOK(t)(e.claim(t, created.Run.ID, "r1"))
	mustOK(t)(e.events(t, created.Run.ID, ev(1, "hello")))
	mustOK(t)(e.complete(t, created.Run.ID, map[string]any{"outcome": "succeeded",
		"pull_request": map[string]any{"url": "https://github.test/o/r/pull/3", "number": 3, "branch": "trakkar/p-1"}}))

	status, raw = e.do(t, "GET", "/api/tasks", nil)
	wantOK(t, status, raw)
	list := decode[struct{ Tasks []TaskView }](t, raw).Tasks
	if len(list) != 1 || list[0].Task.PullRequest == nil || list[0].Task.PullRequest.Number != 3 ||
		len(list[0].Runs) != 1 || list[0].Runs[0].RunnerID != "r1" || len(list[0].Runs[0].Events) != 1 || list[0].Runs[0].Completion == nil {
		t.Fatalf("list %+v", list)
	}

	status, raw = e.do(t, "POST", "/api/tasks/P-1/messages", map[string]string{"body": "now the footer"})
	if status != http.StatusCreated {
		t.Fatalf("message: %d %s", status, raw)
	}
	follow := decode[struct{ Run trakkar.Run }](t, raw).Run
	if follow.Kind != trakkar.KindFollowUp || follow.MessageID == nil {
		t.Fatalf("follow-up %+v", follow)
	}
	mustOK(t)(e.claim(t, follow.ID, "r1"))

	status, raw = e.do(t, "POST", "/api/tasks/P-1/stop", nil)
	wantOK(t, status, raw)
	view := decode[TaskView](t, raw)
	if len(view.Runs) != 2 || view.Runs[1].Run.Status != trakkar.StatusStopRequested {
		t.Fatalf("after stop %+v", view.Runs)
	}
	status, raw = e.do(t, "GET", "/api/tasks/P-1", nil)
	wantOK(t, status, raw)
	if got := decode[TaskView](t, raw); got.Task.ID != created.Task.ID || len(got.Task.Messages) != 1 || got.Task.Messages[0].Body != "now the footer" {
		t.Fatalf("task %+v", got.Task)
	}
}

func TestPersonAPIRefusesCrossOriginWrites(t *testing.T) {
	e := newEnv(t)
	status, _, raw := e.request(t, "POST", "/api/tasks", `{"key":"X-1","title":"t"}`,
		map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.test"})
	wantError(t, status, raw, 403, "forbidden")
	if n := len(e.s.Tasks()); n != 0 {
		t.Fatalf("%d tasks created by a cross-origin request", n)
	}
	status, _, raw = e.request(t, "POST", "/api/tasks", `{"key":"X-1","title":"t"}`, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if status != http.StatusCreated {
		t.Fatalf("same-origin create: %d %s", status, raw)
	}
}

func TestPage(t *testing.T) {
	e := newEnv(t)
	hostile := []string{
		"</script><script>alert(1)</script>",
		"<img src=x onerror=alert(2)>",
		"javascript:alert(3)",
	}
	task, _, err := e.s.CreateTask(NewTask{Key: "XSS-1", Title: hostile[0], Description: hostile[1]})
	if err != nil {
		t.Fatal(err)
	}
	e.s.SetTaskPR(task.ID, &trakkar.PullRequest{URL: hostile[2], Number: 1, Branch: "b"})

	for _, path := range []string{"/", "/tasks/XSS-1", "/tasks/unknown"} {
		t.Run(path, func(t *testing.T) {
			res, err := http.Get(e.ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			page := string(body)
			for _, h := range hostile {
				if strings.Contains(page, h) {
					t.Fatalf("page contains task text %q", h)
				}
			}
			if strings.Contains(page, "innerHTML") || strings.Contains(page, "insertAdjacentHTML") || strings.Contains(page, "document.write") {
				t.Fatal("page script uses an HTML sink")
			}
			for _, want := range []string{"/api/tasks", "textContent", "/stop", "/messages", "setTimeout(refresh, 1000)"} {
				if !strings.Contains(page, want) {
					t.Fatalf("page lacks %q", want)
				}
			}
			if strings.Contains(page, "src=\"http") || strings.Contains(page, "href=\"http") {
				t.Fatal("page loads external assets")
			}
			// The inline script is allowed by its hash and nothing else is.
			m := regexp.MustCompile(`(?s)<script>(.*)</script>`).FindStringSubmatch(page)
			if m == nil {
				t.Fatal("no inline script")
			}
			sum := sha256.Sum256([]byte(m[1]))
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.Contains(csp, "default-src 'none'") {
				t.Fatalf("CSP %q does not pin the script", csp)
			}
		})
	}

	// The data reaches the page only as JSON, where < and > are escaped.
	status, raw := e.do(t, "GET", "/api/tasks", nil)
	wantOK(t, status, raw)
	if strings.Contains(string(raw), "</script>") || strings.Contains(string(raw), "<img") {
		t.Fatalf("JSON carries raw markup: %s", raw)
	}
	if got := decode[struct{ Tasks []TaskView }](t, raw).Tasks[0].Task.Title; got != hostile[0] {
		t.Fatalf("title %q did not round-trip", got)
	}

	res, err := http.Get(e.ts.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("GET /nope: %d", res.StatusCode)
	}
}

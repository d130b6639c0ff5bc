package fakegithub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

type refJSON struct {
	Ref   string `json:"ref"`
	Label string `json:"label"`
}

type prJSON struct {
	Number  int     `json:"number"`
	HTMLURL string  `json:"html_url"`
	State   string  `json:"state"`
	Draft   bool    `json:"draft"`
	Title   string  `json:"title"`
	Body    string  `json:"body"`
	Head    refJSON `json:"head"`
	Base    refJSON `json:"base"`
}

type apiError struct {
	Message string        `json:"message"`
	Errors  []errorDetail `json:"errors,omitempty"`
}

type errorDetail struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

// serveREST routes /repos/{owner}/{repo}/pulls[/{number}].
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	var fail *failure
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		fail = &f
	}
	s.mu.Unlock()
	if fail != nil {
		if fail.status == http.StatusTooManyRequests || fail.status == http.StatusForbidden {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, fail.status, apiError{Message: "injected failure"})
		return
	}
	if !s.bearerOK(r) {
		writeJSON(w, http.StatusUnauthorized, apiError{Message: "Bad credentials"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/repos/"), "/")
	if len(parts) == 2 && r.Method == http.MethodGet {
		s.getRepo(w, parts[0], parts[1])
		return
	}
	if len(parts) < 3 || parts[2] != "pulls" || len(parts) > 4 {
		writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found"})
		return
	}
	owner, name := parts[0], parts[1]
	s.mu.Lock()
	_, known := s.repos[owner+"/"+name]
	s.mu.Unlock()
	if !known {
		writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found"})
		return
	}
	switch {
	case len(parts) == 3 && r.Method == http.MethodPost:
		s.createPR(w, r, owner, name)
	case len(parts) == 3 && r.Method == http.MethodGet:
		s.listPRs(w, r, owner, name)
	case len(parts) == 4 && (r.Method == http.MethodPatch || r.Method == http.MethodGet):
		n, err := strconv.Atoi(parts[3])
		if err != nil || n <= 0 {
			writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found"})
			return
		}
		if r.Method == http.MethodGet {
			s.getPR(w, owner, name, n)
			return
		}
		s.updatePR(w, r, owner, name, n)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Message: "Method Not Allowed"})
	}
}

func (s *Server) bearerOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	for _, scheme := range []string{"Bearer ", "token "} {
		if tok, ok := strings.CutPrefix(h, scheme); ok {
			return s.tokenOK(tok)
		}
	}
	return false
}

func (s *Server) createPR(w http.ResponseWriter, r *http.Request, owner, name string) {
	var in struct {
		Title string `json:"title"`
		Body  string `json:"body"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Draft bool   `json:"draft"`
	}
	if err := decode(r, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "Problems parsing JSON"})
		return
	}
	head := in.Head
	if o, b, ok := strings.Cut(head, ":"); ok {
		if o != owner {
			invalid(w, "head", "invalid")
			return
		}
		head = b
	}
	switch {
	case in.Title == "":
		invalid(w, "title", "missing_field")
		return
	case in.Base == "" || !s.branchExists(owner, name, in.Base):
		invalid(w, "base", "invalid")
		return
	case head == "" || !s.branchExists(owner, name, head):
		invalid(w, "head", "invalid")
		return
	}
	s.notify(Publish{Kind: "pr", Ref: head, RemoteAddr: r.RemoteAddr})
	s.mu.Lock()
	rp := s.repos[owner+"/"+name]
	for _, p := range rp.prs {
		if p.State == "open" && p.Head == head {
			s.mu.Unlock()
			writeJSON(w, http.StatusUnprocessableEntity, apiError{
				Message: "Validation Failed",
				Errors: []errorDetail{{Resource: "PullRequest", Code: "custom",
					Message: fmt.Sprintf("A pull request already exists for %s:%s.", owner, head)}},
			})
			return
		}
	}
	n := len(rp.prs) + 1
	pr := PR{Number: n, Title: in.Title, Body: in.Body, Head: head, Base: in.Base, Draft: in.Draft,
		State: "open", HTMLURL: fmt.Sprintf("%s/%s/%s/pull/%d", s.URL(), owner, name, n)}
	rp.prs = append(rp.prs, pr)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, toJSON(owner, pr))
}

func (s *Server) listPRs(w http.ResponseWriter, r *http.Request, owner, name string) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	headOwner, headBranch, filterHead := "", "", q.Get("head") != ""
	if filterHead {
		var ok bool
		headOwner, headBranch, ok = strings.Cut(q.Get("head"), ":")
		if !ok { // GitHub requires user:ref-name; a bare ref matches nothing useful
			headOwner, headBranch = "", q.Get("head")
		}
	}
	out := []prJSON{}
	for _, p := range s.PRs(owner, name) {
		if state != "all" && p.State != state {
			continue
		}
		if filterHead && (headOwner != owner || p.Head != headBranch) {
			continue
		}
		out = append(out, toJSON(owner, p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getPR(w http.ResponseWriter, owner, name string, n int) {
	for _, p := range s.PRs(owner, name) {
		if p.Number == n {
			writeJSON(w, http.StatusOK, toJSON(owner, p))
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found"})
}

func (s *Server) updatePR(w http.ResponseWriter, r *http.Request, owner, name string, n int) {
	var in struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State *string `json:"state"`
		Base  *string `json:"base"`
	}
	if err := decode(r, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "Problems parsing JSON"})
		return
	}
	if in.State != nil && *in.State != "open" && *in.State != "closed" {
		invalid(w, "state", "invalid")
		return
	}
	if in.Base != nil && !s.branchExists(owner, name, *in.Base) {
		invalid(w, "base", "invalid")
		return
	}
	s.mu.Lock()
	rp := s.repos[owner+"/"+name]
	for i := range rp.prs {
		p := &rp.prs[i]
		if p.Number != n {
			continue
		}
		if in.Title != nil {
			p.Title = *in.Title
		}
		if in.Body != nil {
			p.Body = *in.Body
		}
		if in.State != nil {
			p.State = *in.State
		}
		if in.Base != nil {
			p.Base = *in.Base
		}
		out := toJSON(owner, *p)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
		return
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found"})
}

func toJSON(owner string, p PR) prJSON {
	return prJSON{
		Number: p.Number, HTMLURL: p.HTMLURL, State: p.State, Draft: p.Draft, Title: p.Title, Body: p.Body,
		Head: refJSON{Ref: p.Head, Label: owner + ":" + p.Head},
		Base: refJSON{Ref: p.Base, Label: owner + ":" + p.Base},
	}
}

func invalid(w http.ResponseWriter, field, code string) {
	writeJSON(w, http.StatusUnprocessableEntity, apiError{
		Message: "Validation Failed",
		Errors:  []errorDetail{{Resource: "PullRequest", Field: field, Code: code}},
	})
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// getRepo answers GET /repos/{owner}/{name} with the token's permissions.
func (s *Server) getRepo(w http.ResponseWriter, owner, name string) {
	s.mu.Lock()
	_, known := s.repos[owner+"/"+name]
	readOnly := s.readOnly
	s.mu.Unlock()
	if !known {
		writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"full_name":   owner + "/" + name,
		"permissions": map[string]bool{"admin": false, "maintain": false, "push": !readOnly, "triage": true, "pull": true},
	})
}

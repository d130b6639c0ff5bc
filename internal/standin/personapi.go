package standin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// registerPerson adds the person side: the JSON API under /api/ (tasks addressed
// by key) and the HTML page. The JSON API has no auth (a local dev tool) but
// rejects cross-origin browser writes, so a web page cannot drive it.
func (s *Server) registerPerson(mux *http.ServeMux) {
	api := http.NewServeMux()
	api.HandleFunc("POST /api/tasks", s.handleCreateTask)
	api.HandleFunc("GET /api/tasks", s.handleListTasks)
	api.HandleFunc("GET /api/tasks/{key}", s.handleGetTask)
	api.HandleFunc("POST /api/tasks/{key}/messages", s.handlePostMessage)
	api.HandleFunc("POST /api/tasks/{key}/stop", s.handleStop)
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no endpoint "+r.Method+" "+r.URL.Path)
	})
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "forbidden", "cross-origin request refused")
	}))
	mux.Handle("/api/", csrf.Handler(api))
	mux.HandleFunc("GET /{$}", servePage)
	mux.HandleFunc("GET /tasks/{key}", servePage)
}

type createTaskBody struct {
	Key         string   `json:"key"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	BaseBranch  *string  `json:"base_branch"`
	Labels      []string `json:"labels"`
	Priority    string   `json:"priority"`
}

func (s *Server) handleCreateTask(w http.ResponseWriter, r *http.Request) {
	var body createTaskBody
	if !decodeBody(w, r, &body) {
		return
	}
	if body.BaseBranch != nil && strings.TrimSpace(*body.BaseBranch) == "" {
		body.BaseBranch = nil // an empty form field means the default branch
	}
	task, run, err := s.CreateTask(NewTask(body))
	if err != nil {
		writeGoError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		Task trakkar.Task `json:"task"`
		Run  trakkar.Run  `json:"run"`
	}{task, run})
}

func (s *Server) handleListTasks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"tasks": s.Tasks()})
}

func (s *Server) handleGetTask(w http.ResponseWriter, r *http.Request) {
	v, ok := s.TaskByKey(r.PathValue("key"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no task "+r.PathValue("key"))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handlePostMessage(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Body string `json:"body"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	id, ok := s.taskIDByKey(w, r)
	if !ok {
		return
	}
	run, err := s.PostMessage(id, body.Body)
	if err != nil {
		writeGoError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"run": run})
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	id, ok := s.taskIDByKey(w, r)
	if !ok {
		return
	}
	if err := s.Stop(id); err != nil {
		writeGoError(w, err)
		return
	}
	v, _ := s.Task(id)
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) taskIDByKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.PathValue("key")
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.byKey[key]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no task "+key)
		return "", false
	}
	return ts.task.ID, true
}

// writeGoError maps the Go API's errors to the person API's 4xx answers.
func writeGoError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

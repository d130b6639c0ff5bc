package supervisor_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// A follow-up continues from everything the task already has: the local branch
// under --publish local, the pushed branch under branch. It never resets a
// branch holding earlier work, and says what it continued from.
func TestFollowUpContinuesTheTaskBranch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		publish string
		key     string
	}{
		{supervisor.PublishLocal, "LOC-1"},
		{supervisor.PublishBranch, "BRA-1"},
	}
	for _, c := range cases {
		t.Run(c.publish, func(t *testing.T) {
			parallel(t)
			e := newEnv(t, envOpts{})
			e.start(e.config(func(cfg *supervisor.Config) { cfg.Publish = c.publish }))
			task, _, err := e.stand.CreateTask(standin.NewTask{Key: c.key, Title: "Add greeting files",
				Description: "Add a first file.\nfake:write=first.txt=one\n"})
			if err != nil {
				t.Fatal(err)
			}
			first := e.waitCompleted(c.key, 90*time.Second)
			if first.Completion.Outcome != trakkar.OutcomeSucceeded {
				t.Fatalf("first run: %+v\n%s", first.Completion, eventTexts(first.Events))
			}
			branch := gitCmd(t, e.repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/trakkar/")
			if branch == "" || strings.Contains(branch, "\n") {
				t.Fatalf("want one task branch, got %q", branch)
			}
			if _, err := e.stand.PostMessage(task.ID, "Please add a second file too.\nfake:write=second.txt=two"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 90*time.Second, "follow-up run to complete", func() bool {
				tv, _ := e.stand.TaskByKey(c.key)
				return len(tv.Runs) == 2 && tv.Runs[1].Completion != nil
			})
			tv, _ := e.stand.TaskByKey(c.key)
			second := tv.Runs[1]
			if second.Run.Kind != trakkar.KindFollowUp || second.Completion.Outcome != trakkar.OutcomeSucceeded {
				t.Fatalf("follow-up: kind %q %+v\n%s", second.Run.Kind, second.Completion, eventTexts(second.Events))
			}

			ref := branch
			if c.publish != supervisor.PublishLocal {
				ref = "origin/" + branch
				gitCmd(t, e.repo, "fetch", "-q", "origin")
			}
			files := gitCmd(t, e.repo, "ls-tree", "--name-only", ref)
			if !strings.Contains(files, "first.txt") || !strings.Contains(files, "second.txt") {
				t.Fatalf("%s after the follow-up holds %q, want first.txt and second.txt", ref, files)
			}
			if n := gitCmd(t, e.repo, "rev-list", "--count", "origin/main.."+ref); n != "2" {
				t.Fatalf("%s has %s commits over main, want 2 (one per run)", ref, n)
			}
			if log := gitCmd(t, e.repo, "reflog", "show", "--format=%gs", "refs/heads/"+branch); strings.Contains(log, "Reset") {
				t.Fatalf("the task branch was reset:\n%s", log)
			}
			texts := eventTexts(second.Events)
			if !strings.Contains(texts, "Workspace ready on branch "+branch+" (continuing 1 earlier commit)") {
				t.Fatalf("follow-up does not say it continued the branch:\n%s", texts)
			}
		})
	}
}

// Under --publish branch, a local task branch ahead of the pushed one (an
// earlier push failed) is continued, not reset; one that diverged from it is
// refused with a clear reason and left as it was.
func TestFollowUpKeepsUnpushedWork(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		key      string
		diverged bool
	}{
		{"local ahead", "UNP-1", false},
		{"diverged", "DIV-1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			e := newEnv(t, envOpts{})
			e.start(e.config(func(cfg *supervisor.Config) {
				cfg.Publish = supervisor.PublishBranch
				// The test moves the pushed branch between the runs. A follow-up
				// claimed within the default share of the first run's fetch
				// (which a fast host makes possible) would take that fetch's
				// refs and never see the move.
				cfg.FetchShare = time.Nanosecond
			}))
			task, _, err := e.stand.CreateTask(standin.NewTask{Key: c.key, Title: "Add greeting files",
				Description: "fake:write=first.txt=one\n"})
			if err != nil {
				t.Fatal(err)
			}
			if first := e.waitCompleted(c.key, 90*time.Second); first.Completion.Outcome != trakkar.OutcomeSucceeded {
				t.Fatalf("first run: %+v\n%s", first.Completion, eventTexts(first.Events))
			}
			branch := gitCmd(t, e.repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/trakkar/")
			ident := []string{"-c", "user.name=t", "-c", "user.email=t@example.invalid"}
			unpushed := gitCmd(t, e.repo, append(ident, "commit-tree", branch+"^{tree}", "-p", branch, "-m", "unpushed")...)
			gitCmd(t, e.repo, "update-ref", "refs/heads/"+branch, unpushed)
			if c.diverged {
				bare := e.gh.BareDir("acme", "web")
				other := gitCmd(t, "", append(ident, "--git-dir="+bare, "commit-tree", branch+"^{tree}", "-p", branch, "-m", "someone else")...)
				gitCmd(t, "", "--git-dir="+bare, "update-ref", "refs/heads/"+branch, other)
			}
			if _, err := e.stand.PostMessage(task.ID, "And a second file.\nfake:write=second.txt=two"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 90*time.Second, "follow-up run to complete", func() bool {
				tv, _ := e.stand.TaskByKey(c.key)
				return len(tv.Runs) == 2 && tv.Runs[1].Completion != nil
			})
			tv, _ := e.stand.TaskByKey(c.key)
			second := tv.Runs[1]
			if c.diverged {
				if second.Completion.Outcome != trakkar.OutcomeFailed || !strings.Contains(deref(second.Completion.Error), "have diverged") {
					t.Fatalf("follow-up on diverged branches: %+v, want failed saying they diverged\n%s", second.Completion, eventTexts(second.Events))
				}
				if tip := gitCmd(t, e.repo, "rev-parse", "refs/heads/"+branch); tip != unpushed {
					t.Fatalf("local branch moved from %s to %s", unpushed, tip)
				}
				return
			}
			if second.Completion.Outcome != trakkar.OutcomeSucceeded {
				t.Fatalf("follow-up: %+v\n%s", second.Completion, eventTexts(second.Events))
			}
			gitCmd(t, e.repo, "fetch", "-q", "origin")
			if n := gitCmd(t, e.repo, "rev-list", "--count", "origin/main..origin/"+branch); n != "3" {
				t.Fatalf("pushed branch has %s commits over main, want 3 (first run, unpushed, follow-up)", n)
			}
			if texts := eventTexts(second.Events); !strings.Contains(texts, "(continuing 2 earlier commits)") {
				t.Fatalf("follow-up does not say it continued 2 commits:\n%s", texts)
			}
		})
	}
}

// renameOnFollowUp makes Trakkar answer a follow-up's claim with the task
// retitled, as when a person edits the title between runs.
func renameOnFollowUp(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/claim") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var c trakkar.Claim
		if rec.Code == http.StatusOK && json.Unmarshal(body, &c) == nil && c.Run.Kind == trakkar.KindFollowUp {
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			m["task"].(map[string]any)["title"] = "Renamed by a person"
			body, _ = json.Marshal(m)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// A task renamed between runs keeps its branch: the follow-up continues it
// instead of starting a new branch from the base.
func TestFollowUpKeepsTheBranchOfARenamedTask(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	e.wrapHandler(renameOnFollowUp)
	e.start(e.config(func(cfg *supervisor.Config) { cfg.Publish = supervisor.PublishLocal }))
	task, _, err := e.stand.CreateTask(standin.NewTask{Key: "REN-1", Title: "Add greeting files",
		Description: "fake:write=first.txt=one\n"})
	if err != nil {
		t.Fatal(err)
	}
	if first := e.waitCompleted("REN-1", 90*time.Second); first.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("first run: %+v\n%s", first.Completion, eventTexts(first.Events))
	}
	if _, err := e.stand.PostMessage(task.ID, "And a second file.\nfake:write=second.txt=two"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "follow-up run to complete", func() bool {
		tv, _ := e.stand.TaskByKey("REN-1")
		return len(tv.Runs) == 2 && tv.Runs[1].Completion != nil
	})
	tv, _ := e.stand.TaskByKey("REN-1")
	if c := tv.Runs[1].Completion; c.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("follow-up: %+v\n%s", c, eventTexts(tv.Runs[1].Events))
	}
	branches := gitCmd(t, e.repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/trakkar/")
	if strings.Contains(branches, "\n") {
		t.Fatalf("the follow-up started another branch:\n%s", branches)
	}
	if files := gitCmd(t, e.repo, "ls-tree", "--name-only", branches); !strings.Contains(files, "first.txt") || !strings.Contains(files, "second.txt") {
		t.Fatalf("%s holds %q, want first.txt and second.txt", branches, files)
	}
}

package supervisor_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/fakeagent"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// The leak scenarios (internal/fakeagent/leak.go) play an agent that tries to
// publish the model key through every channel the host forwards: prose, tool
// summaries, long lines, a forged worker event's data keys, the commit message,
// a forged result.json, file contents and file names. Nothing of the key may
// reach the stand-in Trakkar, the fake GitHub's PR, the pushed commits or files.

var (
	base64Run = regexp.MustCompile(`[A-Za-z0-9+/_=-]{16,}`)
	logStamp  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z `)
)

// exposes returns how text still reveals secret, or "": verbatim, reversed, hex,
// fully percent-encoded, or inside any base64/base32 run (at any alignment),
// gzip-compressed or not. The decoding is the test's own, independent of
// internal/redact.
func exposes(text, secret string) string {
	// A log timestamp inside the key (the engine's 16 KiB split) hides nothing.
	text = logStamp.ReplaceAllString(text, "")
	forms := fakeagent.LeakForms(secret)
	for _, name := range []string{"plain", "reversed", "hex", "HEX", "percent"} {
		if strings.Contains(text, forms[name]) {
			return name
		}
	}
	if strings.Contains(strings.ToLower(text), strings.ToLower(forms["percent"])) {
		return "percent"
	}
	holds := func(b []byte) bool { return bytes.Contains(b, []byte(secret)) }
	for _, run := range base64Run.FindAllString(text, -1) {
		run = strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimRight(run, "="))
		for skip := 0; skip < 4 && skip < len(run); skip++ {
			r := run[skip:]
			r = r[:len(r)-len(r)%4]
			dec, err := base64.RawStdEncoding.DecodeString(r)
			if err != nil {
				continue
			}
			if holds(dec) {
				return "base64"
			}
			if zr, err := gzip.NewReader(bytes.NewReader(dec)); err == nil {
				plain, _ := io.ReadAll(io.LimitReader(zr, 1<<20))
				if holds(plain) {
					return "gzip+base64"
				}
			}
		}
		up := strings.ToUpper(run)
		for skip := 0; skip < 8 && skip < len(up); skip++ {
			r := up[skip:]
			r = r[:len(r)-len(r)%8]
			if dec, err := base32.StdEncoding.DecodeString(r); err == nil && holds(dec) {
				return "base32"
			}
		}
	}
	return ""
}

func noExposure(t *testing.T, where, text string) {
	t.Helper()
	if how := exposes(text, modelKey); how != "" {
		t.Errorf("the model key reached %s (%s)", where, how)
	}
}

// everything the stand-in Trakkar holds for a run, as text.
func runText(t *testing.T, rv standin.RunView) string {
	t.Helper()
	b, err := json.Marshal(rv.Events)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString(eventTexts(rv.Events) + "\n" + string(b) + "\n")
	// JSON escapes <, > and &; the plain texts above cover what that hides.
	if c := rv.Completion; c != nil {
		cb, _ := json.Marshal(c)
		sb.Write(cb)
		sb.WriteString("\n" + c.Summary + "\n" + deref(c.Error) + "\n" + deref(c.AgentSessionID))
	}
	return sb.String()
}

func leakTask(t *testing.T, e *env, key, scenario string) {
	t.Helper()
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: "Leak " + scenario,
		Description: "fake:scenario=" + scenario + "\n"}); err != nil {
		t.Fatal(err)
	}
}

func TestHostileAgentCannotPublishTheModelKey(t *testing.T) {
	t.Parallel()
	forEachRuntime(t, hostileAgentCannotPublishTheModelKey)
}

func hostileAgentCannotPublishTheModelKey(t *testing.T, rt hostileRuntime) {
	e := newEnv(t, envOpts{})
	leakTask(t, e, "LEAK-1", "leak-text")
	leakTask(t, e, "LEAK-2", "leak-files")
	leakTask(t, e, "LEAK-3", "leak-result")
	e.start(e.config(rt.apply))
	runs := map[string]standin.RunView{}
	for _, k := range []string{"LEAK-1", "LEAK-2", "LEAK-3"} {
		runs[k] = e.waitCompleted(k, 150*time.Second)
	}
	bare := e.gh.BareDir("acme", "web")
	refs := gitCmd(t, "", "--git-dir="+bare, "for-each-ref", "--format=%(refname)", "refs/heads/")
	worktree := func(key string) string {
		return filepath.Join(e.repo, ".trakkar-worktrees", hostgit.Slug(key, 60))
	}

	// Protection: masking of every encoding (internal/redact) applied to the whole
	// text before anything cuts it, event data keys masked, the engine's 16 KiB
	// partial lines joined, the summary masked and stripped of trailers and
	// terminal sequences before it becomes the commit message and PR body.
	t.Run("messages, tool data, long lines and the commit message", func(t *testing.T) {
		rv := runs["LEAK-1"]
		text := runText(t, rv)
		if !strings.Contains(text, "LEAK RAN leak-text") {
			t.Fatalf("the scenario did not run:\n%s", eventTexts(rv.Events))
		}
		noExposure(t, "Trakkar's events or completion", text)
		// Every form, the tool summary and the key just short of 4000 arrive as
		// masks (the later long lines are cut to 4000 after masking).
		if n := strings.Count(eventTexts(rv.Events), "[REDACTED]"); n < len(fakeagent.LeakForms(modelKey))+2 {
			t.Errorf("only %d masks in the events: the leaks did not all arrive masked", n)
		}
		// The forged worker events arrive while the agent can write to the
		// worker's stdout (issue 9 item 7); when they do, their data keys and a
		// data value across the engine's 16 KiB split must arrive masked.
		var forgedKeys, forgedLong, forgedIgnored, forgedArrived bool
		for _, ev := range rv.Events {
			// Under gVisor the agent can still write into the worker's output,
			// but its unsigned lines are dropped and reported (item 7).
			if ev.Type == trakkar.EventError && strings.Contains(ev.Text, "the worker did not write") {
				forgedIgnored = true
			}
			if ev.Text == "forged tool event" || ev.Text == "forged long data" {
				forgedArrived = true
			}
			if strings.Contains(ev.Text, "LEAK INFO cannot forge") {
				t.Logf("the agent could not forge worker events: %s", ev.Text)
				forgedKeys, forgedLong = true, true
			}
			if ev.Text == "forged tool event" {
				b, _ := json.Marshal(ev.Data)
				t.Logf("the forged worker event arrived with data %s", b)
				forgedKeys = strings.Contains(string(b), "[REDACTED]")
			}
			if blob, ok := ev.Data["blob"].(string); ok && ev.Text == "forged long data" {
				forgedLong = strings.HasSuffix(blob, "[REDACTED]")
			}
		}
		if forgedIgnored && !forgedArrived {
			t.Logf("the agent's forged worker events were ignored as unsigned")
			forgedKeys, forgedLong = true, true
		}
		if !forgedKeys || !forgedLong {
			t.Errorf("the forged events did not arrive masked (data keys %v, long value %v)", forgedKeys, forgedLong)
		}
		files := succeededWithPR(t, e, rv)
		for name, content := range files {
			noExposure(t, "the pushed file "+name, name+"\n"+content)
		}
		branch := rv.Completion.PullRequest.Branch
		msgs := gitCmd(t, "", "--git-dir="+bare, "log", "--format=%B%n----", "refs/heads/"+branch, "--")
		noExposure(t, "the pushed commit messages", msgs)
		low := strings.ToLower(msgs)
		if strings.Contains(low, "co-authored-by") || strings.Contains(low, "signed-off-by") || strings.Contains(msgs, "\x1b") {
			t.Errorf("injected trailers or terminal sequences in the commit message:\n%s", msgs)
		}
		if !strings.Contains(msgs, "[REDACTED]") {
			t.Errorf("the summary did not reach the commit message masked:\n%s", msgs)
		}
		for _, pr := range e.gh.PRs("acme", "web") {
			noExposure(t, "PR #"+pr.Head, pr.Title+"\n"+pr.Body)
			if strings.Contains(strings.ToLower(pr.Body), "co-authored-by") || strings.Contains(pr.Body, "\x1b") {
				t.Errorf("injected trailer or terminal sequence in the PR body:\n%s", pr.Body)
			}
		}
	})

	// Protection: internal/secretscan before commit: the change is refused with
	// the paths named (masked), nothing is committed or pushed, the workspace kept.
	t.Run("key in file contents and names", func(t *testing.T) {
		rv := runs["LEAK-2"]
		text := runText(t, rv)
		if !strings.Contains(text, "LEAK RAN leak-files") {
			t.Fatalf("the scenario did not run:\n%s", eventTexts(rv.Events))
		}
		noExposure(t, "Trakkar's events or completion", text)
		c := rv.Completion
		if c.Outcome != trakkar.OutcomeFailed || c.PullRequest != nil {
			t.Fatalf("outcome %q pr %v: the change was not refused\n%s", c.Outcome, c.PullRequest, eventTexts(rv.Events))
		}
		for _, p := range []string{"config/key.env", "notes/hex.txt", "names/[REDACTED].txt"} {
			if !strings.Contains(deref(c.Error), p) {
				t.Errorf("the refusal does not name %s: %s", p, deref(c.Error))
			}
		}
		if strings.Contains(deref(c.Error), "clean.txt") {
			t.Errorf("a clean file was named: %s", deref(c.Error))
		}
		if strings.Contains(refs, "leak-2") {
			t.Errorf("a branch was pushed: %s", refs)
		}
		if _, err := os.Stat(filepath.Join(worktree("LEAK-2"), "config", "key.env")); err != nil {
			t.Errorf("the workspace was not kept: %v", err)
		}
	})

	// Protection: checkedResult: the forged session id and negative numbers are
	// dropped with an error event; nothing of them is forwarded or kept.
	t.Run("forged result file", func(t *testing.T) {
		rv := runs["LEAK-3"]
		text := runText(t, rv)
		if !strings.Contains(text, "LEAK RAN leak-result") {
			t.Fatalf("the scenario did not run:\n%s", eventTexts(rv.Events))
		}
		noExposure(t, "Trakkar's events or completion", text)
		c := rv.Completion
		if c.Usage.CostUSD < 0 || c.Usage.InputTokens < 0 {
			t.Errorf("negative usage forwarded: %+v", c.Usage)
		}
		if !strings.Contains(eventTexts(rv.Events), "Ignored in the agent's result file") {
			t.Errorf("the dropped fields were not reported:\n%s", eventTexts(rv.Events))
		}
		state := filepath.Join(e.repo, ".trakkar-worktrees", ".state")
		_ = filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "session.json" {
				return nil
			}
			b, _ := os.ReadFile(p)
			noExposure(t, p, string(b))
			return nil
		})
	})
}

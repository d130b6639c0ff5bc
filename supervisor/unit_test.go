package supervisor

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

func TestLineWriterSplitsAcrossWrites(t *testing.T) {
	var got []string
	w := newLineWriter(func(b []byte) { got = append(got, string(b)) })
	for _, chunk := range []string{"fir", "st\nsec", "ond\n\n  \nthi", "rd"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	want := []string{"first", "second", "third"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLineWriterCapsHugeLines(t *testing.T) {
	var lens []int
	w := newLineWriter(func(b []byte) { lens = append(lens, len(b)) })
	big := strings.Repeat("x", 3*maxLine+10)
	_, _ = w.Write([]byte(big))
	_, _ = w.Write([]byte("\n"))
	w.Close()
	for _, n := range lens {
		if n > maxLine {
			t.Fatalf("line of %d bytes passed the %d cap", n, maxLine)
		}
	}
	if len(lens) < 3 {
		t.Fatalf("huge line not delivered in pieces: %v", lens)
	}
}

func TestHeartbeatPeriod(t *testing.T) {
	for _, c := range []struct {
		lease  int
		lo, hi time.Duration
	}{
		{60, 18 * time.Second, 22 * time.Second},
		{3, 900 * time.Millisecond, 1100 * time.Millisecond},
		{0, 18 * time.Second, 22 * time.Second},
	} {
		for i := 0; i < 50; i++ {
			if p := heartbeatPeriod(c.lease); p < c.lo || p > c.hi {
				t.Fatalf("lease %d: period %s outside [%s, %s]", c.lease, p, c.lo, c.hi)
			}
		}
	}
}

// Poll and completion retries: 1s doubling, capped by maxWait (and 128s),
// in the upper half.
func TestRetryDelay(t *testing.T) {
	for _, c := range []struct {
		failures int
		maxWait  time.Duration
		lo, hi   time.Duration
	}{
		{1, 15 * time.Second, 500 * time.Millisecond, time.Second},
		{3, 15 * time.Second, 2 * time.Second, 4 * time.Second},
		{5, 15 * time.Second, 7500 * time.Millisecond, 15 * time.Second},
		{40, 30 * time.Second, 15 * time.Second, 30 * time.Second},
		{40, 0, 64 * time.Second, 128 * time.Second},
		{40, time.Hour, 64 * time.Second, 128 * time.Second},
		{1, 200 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
	} {
		var most time.Duration
		for i := 0; i < 200; i++ {
			p := retryPolicy(c.maxWait).Delay(c.failures)
			if p < c.lo || p > c.hi {
				t.Fatalf("failures %d, max %s: delay %s outside [%s, %s]", c.failures, c.maxWait, p, c.lo, c.hi)
			}
			most = max(most, p)
		}
		if most < c.lo+(c.hi-c.lo)/2 {
			t.Errorf("failures %d, max %s: delays up to %s only, want spread to %s", c.failures, c.maxWait, most, c.hi)
		}
	}
}

func TestPromptAndBodies(t *testing.T) {
	msgID := "msg_2"
	c := trakkar.Claim{
		Run: trakkar.Run{ID: "run_1", Kind: trakkar.KindFollowUp, MessageID: &msgID, Attempt: 2},
		Task: trakkar.Task{
			Key: "WEB-142", Title: "Fix login\nsecond line", Description: "The button does nothing.",
			URL: "https://app.trakkar.in/t/WEB-142",
			Messages: []trakkar.Message{
				{ID: "msg_1", Author: trakkar.Author{Name: "Asha", Kind: "user"}, Body: "Please hurry"},
				{ID: "msg_2", Author: trakkar.Author{Name: "Asha", Kind: "user"}, Body: "Also add a test"},
			},
		},
	}
	p := buildPrompt(c)
	for _, want := range []string{"WEB-142", "The button does nothing.", "Asha (user): Please hurry", "address this latest message:\nAlso add a test"} {
		if !strings.Contains(p, want) {
			t.Errorf("prompt lacks %q:\n%s", want, p)
		}
	}
	body := prBody(c, "Fixed the handler.")
	for _, want := range []string{"[WEB-142](https://app.trakkar.in/t/WEB-142)", "Fixed the handler.", "run_1", "attempt 2"} {
		if !strings.Contains(body, want) {
			t.Errorf("PR body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(prTitle(c.Task), "\n") {
		t.Errorf("PR title keeps a newline: %q", prTitle(c.Task))
	}
	msg := commitMessage(c, strings.Repeat("é", 5000))
	if !strings.HasPrefix(msg, "WEB-142: Fix login\n\n") || !strings.Contains(msg, "Trakkar-Run: run_1") {
		t.Errorf("commit message:\n%s", msg)
	}
	if !strings.Contains(msg, "…") {
		t.Errorf("long summary not truncated")
	}
}

func TestConfigValidate(t *testing.T) {
	base := Defaults()
	base.Repo, base.ContainerUser = "/r", "1000:1000"
	for _, c := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"no repo", func(c *Config) { c.Repo = "" }, false},
		{"bad provider", func(c *Config) { c.Provider = "codex" }, false},
		{"bad publish", func(c *Config) { c.Publish = "mail" }, false},
		{"negative", func(c *Config) { c.MaxConcurrency = -1 }, false},
		{"no user", func(c *Config) { c.ContainerUser = "" }, false},
	} {
		cfg := base
		c.mod(&cfg)
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v", c.name, err)
		}
	}
}

func TestInsideWorktrees(t *testing.T) {
	for p, want := range map[string]bool{
		"/src/web":                             false,
		"/src/web/.trakkar-worktrees/web-1":    true,
		"/src/web/.trakkar-worktrees/web-1/x/": true,
		"/src/web/trakkar-worktrees":           false,
	} {
		if got := InsideWorktrees(p); got != want {
			t.Errorf("InsideWorktrees(%q) = %v", p, got)
		}
	}
}

func TestSurviveKeepsThePanicInTheRun(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	s := &Supervisor{log: zap.New(core)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.survive(s.log)
		var m map[string]int
		//lint:ignore SA5000 the nil-map write is the deliberate panic under test
		m["x"] = 1 // a bug in one run
	}()
	<-done
	if logs.FilterMessage("run crashed; leaving it to its lease").Len() != 1 {
		t.Fatalf("panic not logged: %v", logs.All())
	}
}

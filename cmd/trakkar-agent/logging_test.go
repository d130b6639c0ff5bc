package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trakkar/trakkar-agent/internal/logkey"
	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/testimage"
)

func TestLogsMaskSecrets(t *testing.T) {
	var buf bytes.Buffer
	sink := &maskingSink{r: redact.New(), w: zapcore.AddSync(&buf)}
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), sink, zap.InfoLevel))
	const token = "trk_agent_verysecretvalue"
	log.Info("before", zap.String("token", token))
	sink.mask(token, "ghp_anothersecretvalue")
	log.Info("after", zap.String("token", token), zap.String("err", "push to https://x-access-token:ghp_anothersecretvalue@github.com failed"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	if strings.Contains(lines[1], token) || strings.Contains(lines[1], "ghp_another") || !strings.Contains(lines[1], redact.Mask) {
		t.Fatalf("secret in log after mask: %q", lines[1])
	}
}

// Console on a terminal, where a person reads it; JSON elsewhere, where a CI
// system or a log shipper parses it; the flag wins over both.
func TestLogFormatChoice(t *testing.T) {
	cases := []struct {
		asked    string
		terminal bool
		want     string
		bad      bool
	}{
		{"", true, logFormatConsole, false},
		{"", false, logFormatJSON, false},
		{"json", true, logFormatJSON, false},
		{"console", false, logFormatConsole, false},
		{"xml", false, "", true},
	}
	for _, c := range cases {
		got, err := logFormat(c.asked, c.terminal)
		var ue usageError
		if c.bad != errors.As(err, &ue) || got != c.want {
			t.Errorf("logFormat(%q, terminal=%v) = %q, %v; want %q (bad input: %v)", c.asked, c.terminal, got, err, c.want, c.bad)
		}
	}
}

// A JSON line decodes, masks secrets and names the run once.
func TestJSONLogLine(t *testing.T) {
	var buf bytes.Buffer
	log, sink, err := newLoggerTo(zapcore.AddSync(&buf), "info", logFormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	const token = "trk_agent_verysecretvalue"
	sink.mask(token)
	log.With(zap.String(logkey.RunID, "run_1")).Info("claimed", zap.String("err", "bad token "+token))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %q: %v", buf.String(), err)
	}
	if line["msg"] != "claimed" || line[logkey.RunID] != "run_1" || strings.Contains(buf.String(), token) {
		t.Fatalf("line %s: want msg, run_id and the token masked", buf.String())
	}
	if n := strings.Count(buf.String(), `"`+logkey.RunID+`"`); n != 1 {
		t.Fatalf("run_id %d times in %s", n, buf.String())
	}
}

// The binary logs JSON when stderr is not a terminal, unless told otherwise.
func TestLogFormatOfTheBinary(t *testing.T) {
	url := standIn(t)
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"json off a terminal", nil, `"msg":"started"`},
		{"console when asked", []string{"TRAKKAR_LOG_FORMAT=console"}, "\tstarted\t"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := gitInit(t, "https://github.com/acme/web.git")
			env := append([]string{"TRAKKAR_TOKEN=trk_agent_locktest", "TRAKKAR_API_URL=" + url,
				"TRAKKAR_RUNNER_ID=rnr_logfmt_" + testimage.RunID()}, c.env...)
			r := startRunner(t, repo, []string{"--dry-run", "--provider", "claude_code", "--poll-wait", "1"}, env)
			r.waitOutput(t, c.want, 20*time.Second)
		})
	}
}

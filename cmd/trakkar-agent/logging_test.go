package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trakkar/trakkar-agent/internal/redact"
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

package main

import (
	"os"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trakkar/trakkar-agent/internal/redact"
)

// maskingSink masks known secrets in every log entry before it reaches stderr.
// Secrets are learnt while the configuration is read, after the logger exists.
type maskingSink struct {
	mu sync.Mutex
	r  *redact.Redactor
	w  zapcore.WriteSyncer
}

func (m *maskingSink) Write(p []byte) (int, error) {
	m.mu.Lock()
	r := m.r
	m.mu.Unlock()
	if _, err := m.w.Write([]byte(r.String(string(p)))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (m *maskingSink) Sync() error { return m.w.Sync() }

// mask adds secrets to the set masked from now on.
func (m *maskingSink) mask(secrets ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.r = m.r.With(secrets...)
}

// newLogger builds the console logger on a masking sink.
func newLogger(level string) (*zap.Logger, *maskingSink, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, nil, badInput("unknown --log-level %q", level)
	}
	enc := zap.NewDevelopmentEncoderConfig()
	sink := &maskingSink{r: redact.New(), w: zapcore.Lock(os.Stderr)}
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), sink, lvl)
	return zap.New(core, zap.AddCaller()), sink, nil
}

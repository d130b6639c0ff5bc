package main

import (
	"os"
	"sync"

	"github.com/urfave/cli/v2"
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

// Log formats of --log-format.
const (
	logFormatJSON    = "json"
	logFormatConsole = "console"
)

// logFormatFlag is --log-format, which every command takes.
func logFormatFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-format", EnvVars: []string{"TRAKKAR_LOG_FORMAT"},
		Usage: "json or console (default: console when stderr is a terminal, else json)"}
}

// logFormat is the format asked for, else console on a terminal, where a
// person reads it, and JSON elsewhere, where a CI system or a log shipper
// parses it.
func logFormat(asked string, terminal bool) (string, error) {
	switch asked {
	case logFormatJSON, logFormatConsole:
		return asked, nil
	case "":
		if terminal {
			return logFormatConsole, nil
		}
		return logFormatJSON, nil
	}
	return "", badInput("unknown --log-format %q: use json or console", asked)
}

// stderrIsTerminal says whether stderr is a character device (a terminal).
func stderrIsTerminal() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newLogger builds the logger on stderr through a masking sink.
func newLogger(level, format string) (*zap.Logger, *maskingSink, error) {
	format, err := logFormat(format, stderrIsTerminal())
	if err != nil {
		return nil, nil, err
	}
	return newLoggerTo(zapcore.Lock(os.Stderr), level, format)
}

// newLoggerTo builds a logger of a known format writing to w.
func newLoggerTo(w zapcore.WriteSyncer, level, format string) (*zap.Logger, *maskingSink, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, nil, badInput("unknown --log-level %q", level)
	}
	var enc zapcore.Encoder
	if format == logFormatJSON {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		cfg.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	} else {
		enc = zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	}
	sink := &maskingSink{r: redact.New(), w: w}
	return zap.New(zapcore.NewCore(enc, sink, lvl), zap.AddCaller()), sink, nil
}

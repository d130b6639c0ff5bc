package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

func devServerCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev-server",
		Usage: "run a local Trakkar stand-in (in memory) to try the runner without a Trakkar account",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8484", Usage: "listen address"},
			&cli.StringFlag{Name: "token", Value: "trk_agent_dev", Usage: "agent token the stand-in accepts"},
			&cli.StringFlag{Name: "provider", Value: "claude_code", Usage: "provider in the agent's settings"},
			&cli.IntFlag{Name: "lease", Value: 60, Usage: "lease seconds handed out on claim (at least 1)"},
			&cli.StringFlag{Name: "log-level", Value: "info"},
			logFormatFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Int("lease") <= 0 {
				return badInput("--lease must be positive")
			}
			log, _, err := newLogger(c.String("log-level"), c.String("log-format"))
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return badInput("cannot listen on %s: %v", c.String("addr"), err)
			}
			public := "http://" + ln.Addr().String()
			srv := standin.New(standin.Options{
				Token:        c.String("token"),
				LeaseSeconds: c.Int("lease"),
				PublicURL:    public,
				Logger:       log.Named("standin"),
				Agent:        trakkar.Agent{ID: "agt_dev", Name: "Local agent", Provider: c.String("provider"), BranchPrefix: "trakkar/"},
			})
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				srv.Close() // release open long polls so shutdown is quick
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx)
			}()
			fmt.Printf("Trakkar stand-in on %s\n  open %s/ in a browser to create tasks and watch them\n  run the runner with: TRAKKAR_API_URL=%s TRAKKAR_TOKEN=%s trakkar-agent\n",
				public, public, public, c.String("token"))
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			return nil
		},
	}
}

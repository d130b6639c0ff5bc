package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/supervisor"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove the worktrees, state and exited containers of finished tasks",
		Description: "Workspaces of runs that are not finished (still working, or waiting for a restarted\n" +
			"runner to pick them up) are kept. Failed and stopped runs count as finished: inspect their\n" +
			"worktrees under .trakkar-worktrees/ before pruning.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Usage: "the repository (default: the one containing the working directory)"},
			&cli.BoolFlag{Name: "caches", Usage: "also drop the dependency cache volumes of every task of this repository, kept or not"},
			&cli.StringFlag{Name: "log-level", Value: "warn"},
			logFormatFlag(),
		},
		Action: func(c *cli.Context) error {
			log, _, err := newLogger(c.String("log-level"), c.String("log-format"))
			if err != nil {
				return err
			}
			ctx := context.Background()
			dir := c.String("repo")
			if dir == "" {
				if dir, err = os.Getwd(); err != nil {
					return fmt.Errorf("working directory: %w", err)
				}
			}
			if abs, err := filepath.Abs(dir); err != nil || supervisor.InsideWorktrees(abs) {
				return badInput("%s is inside a task worktree folder (or unusable); run prune in the repository itself", dir)
			}
			g, err := hostgit.New(hostgit.Options{StateDir: gitStateDir(), Logger: log})
			if err != nil {
				return fmt.Errorf("prepare host git: %w", err)
			}
			repo, err := g.RepoRoot(ctx, dir)
			if err != nil {
				return badInput("%s is not inside a git repository: run prune in the repository, or pass --repo", dir)
			}
			rt, err := docker.New(ctx, log)
			if err != nil {
				return badInput("%v", err)
			}
			defer rt.Close()
			rep, err := supervisor.Prune(ctx, repo, rt, g)
			if err != nil {
				return err
			}
			fmt.Printf("removed %d workspaces, %d containers and %d cache volumes", len(rep.Workspaces), rep.Containers, rep.Volumes)
			if len(rep.Kept) > 0 {
				fmt.Printf("; kept %d of unfinished runs: %v", len(rep.Kept), rep.Kept)
			}
			fmt.Println()
			if c.Bool("caches") {
				return pruneCaches(ctx, rt, repo)
			}
			return nil
		},
	}
}

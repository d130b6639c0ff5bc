package main

import (
	"context"
	"fmt"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// pruneCaches drops the repository's dependency cache volumes.
func pruneCaches(ctx context.Context, rt *docker.Client, repo string) error {
	n, err := supervisor.PruneCaches(ctx, rt, repo)
	fmt.Printf("removed %d cache volumes\n", n)
	if err != nil {
		return fmt.Errorf("drop dependency caches: %w", err)
	}
	return nil
}

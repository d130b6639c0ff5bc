package main

import (
	"context"
	"errors"

	"github.com/trakkar/trakkar-agent/internal/docker"
)

// pruneCaches drops the repository's dependency cache volumes.
func pruneCaches(ctx context.Context, rt *docker.Client, repo string) error {
	return errors.New("dependency caches are not implemented yet")
}

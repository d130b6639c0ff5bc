package hostgit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Version returns git's version, e.g. "2.39.5".
func (g *Git) Version(ctx context.Context) (string, error) {
	out, err := g.run(ctx, call{op: "version", args: []string{"--version"}, readOnly: true})
	if err != nil {
		return "", fmt.Errorf("git version: %w", err)
	}
	v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "git version "))
	if v == "" {
		return "", errors.New("git version: empty answer")
	}
	return v, nil
}

// Excluded reports whether pattern is a line of the repository's
// info/exclude, the file Exclude writes. It changes nothing.
func (g *Git) Excluded(ctx context.Context, repo, pattern string) (bool, error) {
	common, err := g.CommonDir(ctx, repo)
	if err != nil {
		return false, fmt.Errorf("excluded: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(common, "info", "exclude"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("excluded: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSuffix(line, "\r") == pattern {
			return true, nil
		}
	}
	return false, nil
}

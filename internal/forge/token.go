package forge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoToken means no GitHub token could be found.
var ErrNoToken = errors.New("no GitHub token: set GH_TOKEN or GITHUB_TOKEN, or log in with `gh auth login`")

const ghTimeout = 10 * time.Second

// TokenEnv are the variables a GitHub token is read from, in order.
var TokenEnv = []string{"GH_TOKEN", "GITHUB_TOKEN"}

// ResolveToken returns GH_TOKEN, else GITHUB_TOKEN, else the output of `gh auth token`
// when gh is on getenv("PATH"). gh runs with cwd os.TempDir(), never in a worktree
// (gh reads the git repository around its cwd). getenv nil means os.Getenv.
func ResolveToken(ctx context.Context, getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, name := range TokenEnv {
		if tok := strings.TrimSpace(getenv(name)); tok != "" {
			return tok, nil
		}
	}
	gh := lookPath("gh", getenv("PATH"))
	if gh == "" {
		return "", ErrNoToken
	}
	ctx, cancel := context.WithTimeout(ctx, ghTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gh, "auth", "token")
	cmd.Dir = os.TempDir()
	cmd.Env = ghEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return "", fmt.Errorf("%w (gh auth token: %v: %s)", ErrNoToken, err, msg)
	}
	tok := strings.TrimSpace(stdout.String())
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%w (gh auth token printed no usable token)", ErrNoToken)
	}
	return tok, nil
}

// ghEnv is the process environment without GIT_* (gh may run git) and with prompts off.
func ghEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "GH_PROMPT_DISABLED=1", "NO_COLOR=1", "GIT_TERMINAL_PROMPT=0")
}

// lookPath finds an executable regular file named name in the absolute entries of
// path; relative entries (".", "") are skipped so the cwd never supplies gh.
func lookPath(name, path string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

package supervisor

import "github.com/trakkar/trakkar-agent/internal/trakkar"

// prBody is the PR body of a run without a verify step; only the tests use it.
func prBody(c trakkar.Claim, summary string) string { return prBodyVerified(c, summary, nil, 0) }

package sandbox

import "testing"

// Two attempts of one run get different container names: on a shared engine
// the lost attempt's container must not block the next attempt's.
func TestContainerNamePerAttempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt int
		want    string
	}{
		{0, "trakkar-web-1-run-abc"},
		{1, "trakkar-web-1-run-abc"},
		{2, "trakkar-web-1-run-abc-a2"},
		{12, "trakkar-web-1-run-abc-a12"},
	}
	for _, tc := range tests {
		if got := ContainerName(Run{Folder: "web-1", RunID: "run_abc", Attempt: tc.attempt}); got != tc.want {
			t.Errorf("attempt %d: %q, want %q", tc.attempt, got, tc.want)
		}
	}
}

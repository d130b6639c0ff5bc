package sandbox

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakeruntime"
)

// Two runners on one engine may hold different attempts of one run. Stopping
// a run's egress removes this runner's proxy and network, never the other
// runner's: its agent would lose its way out mid-run.
func TestStopEgressLeavesAnotherRunnersProxy(t *testing.T) {
	ctx := context.Background()
	rt := fakeruntime.New(func(docker.Spec) fakeruntime.Script { return fakeruntime.Script{} })
	for _, runner := range []string{"rnr_mine", "rnr_theirs"} {
		labels := map[string]string{LabelRunID: "run_1", LabelRole: RoleEgress, LabelRunner: runner}
		_, err := rt.Create(ctx, docker.Spec{Name: "trakkar-web-1-run-1-egress-" + runner, Image: "img", Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.CreateNetwork(ctx, "trakkar-web-1-net-"+runner, true, map[string]string{LabelRunID: "run_1", LabelRunner: runner}); err != nil {
			t.Fatal(err)
		}
	}
	New(Config{RunnerID: "rnr_mine", Network: NetworkAllowlist}, rt, zap.NewNop()).StopEgress(ctx, "run_1")

	for runner, wantLeft := range map[string]int{"rnr_mine": 0, "rnr_theirs": 1} {
		cs, err := rt.List(ctx, map[string]string{LabelRunner: runner})
		if err != nil {
			t.Fatal(err)
		}
		ns, err := rt.ListNetworks(ctx, map[string]string{LabelRunner: runner})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != wantLeft || len(ns) != wantLeft {
			t.Errorf("%s: %d proxies and %d networks left, want %d of each", runner, len(cs), len(ns), wantLeft)
		}
	}
}

package supervisor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/sandbox"
)

// fakeVolumes is a container runtime holding labelled volumes and no containers.
type fakeVolumes struct {
	vols    []docker.Volume
	removed []string
}

func (f *fakeVolumes) List(context.Context, map[string]string) ([]docker.Container, error) {
	return nil, nil
}
func (f *fakeVolumes) Remove(context.Context, string) error { return nil }
func (f *fakeVolumes) ListVolumes(_ context.Context, labels map[string]string) ([]docker.Volume, error) {
	var out []docker.Volume
	for _, v := range f.vols {
		ok := true
		for k, want := range labels {
			if got, has := v.Labels[k]; !has || (want != "" && got != want) {
				ok = false
			}
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}
func (f *fakeVolumes) RemoveVolume(_ context.Context, name string) error {
	f.removed = append(f.removed, name)
	return nil
}

// Pruning a finished task removes its cache volumes, both roles; a task whose
// run is not finished, and another repository's volumes, keep theirs.
func TestPruneRemovesTheTaskCaches(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	s := sandbox.New(sandbox.Config{Repo: repo, DependencyCaches: true}, nil, nil)
	rt := &fakeVolumes{}
	for _, task := range []struct{ key, phase string }{{"web-1", phaseDone}, {"web-2", phaseRunning}} {
		state := filepath.Join(repo, ".trakkar-worktrees", ".state", task.key)
		if err := os.MkdirAll(state, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(runRecord{Phase: task.phase})
		if err := os.WriteFile(filepath.Join(state, recordFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{CacheAgent, CacheVerify} {
			for _, v := range s.CacheVolumes(sandbox.Run{Folder: task.key}, role) {
				rt.vols = append(rt.vols, docker.Volume{Name: v.Name, Labels: v.Labels})
			}
		}
	}
	other := sandbox.New(sandbox.Config{Repo: t.TempDir(), DependencyCaches: true}, nil, nil)
	for _, v := range other.CacheVolumes(sandbox.Run{Folder: "web-1"}, CacheAgent) {
		rt.vols = append(rt.vols, docker.Volume{Name: v.Name, Labels: v.Labels})
	}

	rep, err := Prune(context.Background(), repo, rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Workspaces, []string{"web-1"}) || !slices.Equal(rep.Kept, []string{"web-2"}) {
		t.Fatalf("workspaces %v kept %v", rep.Workspaces, rep.Kept)
	}
	var want []string
	for _, role := range []string{CacheAgent, CacheVerify} {
		for _, v := range s.CacheVolumes(sandbox.Run{Folder: "web-1"}, role) {
			want = append(want, v.Name)
		}
	}
	if rep.Volumes != len(want) || len(rt.removed) != len(want) {
		t.Fatalf("removed %d volumes (reported %d), want %d: %v", len(rt.removed), rep.Volumes, len(want), rt.removed)
	}
	for _, name := range rt.removed {
		if !slices.Contains(want, name) {
			t.Errorf("removed %s", name)
		}
	}
}

// fakeContainers adds containers to fakeVolumes.
type fakeContainers struct {
	fakeVolumes
	cs      []docker.Container
	removed []string
}

func (f *fakeContainers) List(context.Context, map[string]string) ([]docker.Container, error) {
	return f.cs, nil
}
func (f *fakeContainers) Remove(_ context.Context, id string) error {
	f.removed = append(f.removed, id)
	return nil
}

// Prune touches only the containers of this repository's runs: the engine is
// shared, and another checkout's exited container (or a running one whose
// task has the same key, or another runner's attempt of the same run) is none
// of its business.
func TestPruneTouchesOnlyThisRepositorysContainers(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	state := filepath.Join(repo, ".trakkar-worktrees", ".state", "web-1")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := runRecord{Phase: phaseDone, RunnerID: "rnr_me"}
	rec.Claim.Run.ID, rec.Claim.Task.Key = "run_mine", "WEB-1"
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(state, recordFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	labels := func(run, runner string) map[string]string {
		return map[string]string{LabelManaged: "true", LabelRunID: run, LabelTaskKey: "WEB-1", LabelRunner: runner}
	}
	rt := &fakeContainers{cs: []docker.Container{
		{ID: "mine-exited", State: "exited", Labels: labels("run_mine", "rnr_me")},
		{ID: "other-exited", State: "exited", Labels: labels("run_other", "rnr_me")},
		{ID: "other-running", State: "running", Labels: labels("run_other2", "rnr_me")},
		// Another runner's attempt of the same run, on the same engine.
		{ID: "other-runner-exited", State: "exited", Labels: labels("run_mine", "rnr_other_host")},
	}}
	rep, err := Prune(context.Background(), repo, rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rt.removed, []string{"mine-exited"}) || rep.Containers != 1 {
		t.Errorf("removed containers %v (reported %d), want only mine-exited", rt.removed, rep.Containers)
	}
	if !slices.Equal(rep.Workspaces, []string{"web-1"}) {
		t.Errorf("another checkout's running task kept this one's workspace: workspaces %v kept %v", rep.Workspaces, rep.Kept)
	}
}

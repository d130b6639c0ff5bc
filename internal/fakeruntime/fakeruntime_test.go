package fakeruntime

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// The fake must keep the contract of docs/runtime.md, or tests built on it
// prove nothing about the supervisor with the real engine.

func start(t *testing.T, rt *Runtime, s docker.Spec) (string, <-chan docker.WaitResult) {
	t.Helper()
	id, err := rt.Create(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := rt.Start(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return id, ch
}

func waitEnd(t *testing.T, ch <-chan docker.WaitResult) docker.WaitResult {
	t.Helper()
	select {
	case wr := <-ch:
		return wr
	case <-time.After(30 * time.Second): // bounds a failure only
		t.Fatal("container did not end")
		return docker.WaitResult{}
	}
}

func TestEndings(t *testing.T) {
	cases := []struct {
		name   string
		script Script
		stop   bool
		want   docker.ExitStatus
	}{
		{"exit code", Script{Exit: 3}, false, docker.ExitStatus{Code: 3}},
		{"oom", Script{OOM: true}, false, docker.ExitStatus{Code: 137, OOMKilled: true}},
		{"hang until stopped", Script{Hang: true}, true, docker.ExitStatus{Code: 143}},
		{"ignores the stop signal", Script{Hang: true, IgnoreTerm: true}, true, docker.ExitStatus{Code: 137}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt := New(func(docker.Spec) Script { return c.script })
			id, ch := start(t, rt, docker.Spec{Name: "c"})
			if c.stop {
				began := time.Now()
				if err := rt.Stop(context.Background(), id, 50*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				if c.script.IgnoreTerm && time.Since(began) < 50*time.Millisecond {
					t.Error("a container ignoring the stop signal ended before the grace")
				}
			}
			if wr := waitEnd(t, ch); wr.Err != nil || wr.Status != c.want {
				t.Fatalf("ended %+v %v, want %+v", wr.Status, wr.Err, c.want)
			}
			if _, ok := <-ch; ok {
				t.Error("the wait channel yielded twice")
			}
		})
	}
}

func TestGoneIsNotAnError(t *testing.T) {
	rt := New(nil)
	ctx := context.Background()
	for name, err := range map[string]error{
		"Stop":          rt.Stop(ctx, "nope", time.Second),
		"Remove":        rt.Remove(ctx, "nope"),
		"RemoveNetwork": rt.RemoveNetwork(ctx, "nope"),
		"RemoveVolume":  rt.RemoveVolume(ctx, "nope"),
	} {
		if err != nil {
			t.Errorf("%s of a gone object: %v", name, err)
		}
	}
	if _, err := rt.Wait(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Wait of a gone container: %v", err)
	}
}

func TestVolumeInUse(t *testing.T) {
	rt := New(func(docker.Spec) Script { return Script{Hang: true} })
	id, _ := start(t, rt, docker.Spec{Name: "c", Volumes: []docker.VolumeMount{{Name: "vol"}}})
	if err := rt.RemoveVolume(context.Background(), "vol"); err == nil {
		t.Fatal("removed a volume a container uses")
	}
	_ = rt.Remove(context.Background(), id)
	if err := rt.RemoveVolume(context.Background(), "vol"); err != nil {
		t.Fatal(err)
	}
}

func TestNameTaken(t *testing.T) {
	rt := New(nil)
	if _, err := rt.Create(context.Background(), docker.Spec{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Create(context.Background(), docker.Spec{Name: "c"}); err == nil {
		t.Fatal("created a second container under a taken name")
	}
}

func TestCancelledWaitLeavesItRunning(t *testing.T) {
	rt := New(func(docker.Spec) Script { return Script{Hang: true} })
	id, _ := rt.Create(context.Background(), docker.Spec{Name: "c"})
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := rt.Start(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if wr := waitEnd(t, ch); !errors.Is(wr.Err, context.Canceled) {
		t.Fatalf("wait ended with %v, want the context's error", wr.Err)
	}
	if got := rt.Running(nil); len(got) != 1 {
		t.Fatal("cancelling the wait stopped the container")
	}
	_ = rt.Remove(context.Background(), id)
}

func TestWaitOfCreatedReturns(t *testing.T) {
	rt := New(nil)
	id, _ := rt.Create(context.Background(), docker.Spec{Name: "c"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := rt.Wait(ctx, id); err != nil {
		t.Fatalf("wait of a created container: %v", err)
	}
}

// The worker's lines are signed with the key from the out folder, which is
// removed, and a follow returns once the container exited with every line.
func TestLinesSignedAndFollowed(t *testing.T) {
	out := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	if err := os.WriteFile(filepath.Join(out, workerproto.KeyFile), []byte(hex.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := New(func(docker.Spec) Script {
		return Script{Lines: []workerproto.Line{{Type: workerproto.TypeMessage, Text: "one"}, {Type: workerproto.TypeMessage, Text: "two"}},
			Forged: []string{"forged"}, Stderr: []string{"err"}, Result: &workerproto.Result{Outcome: workerproto.OutcomeSucceeded}}
	})
	id, ch := start(t, rt, docker.Spec{Name: "c", Mounts: []docker.Mount{{Source: out, Target: workerproto.OutDir}}})
	var stdout, stderr bytes.Buffer
	if err := rt.LogsSince(context.Background(), id, time.Time{}, true, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, ch)
	var signed []string
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		ts, raw, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("line without a timestamp: %q", l)
		}
		if line, ok := workerproto.Verify(key, []byte(raw)); ok {
			signed = append(signed, workerproto.Parse(line, time.Now()).Text)
		}
	}
	if strings.Join(signed, ",") != "one,two" {
		t.Errorf("signed lines %q, want one,two", signed)
	}
	if !strings.HasSuffix(stderr.String(), " err\n") {
		t.Errorf("stderr %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, workerproto.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the key file was left in the out folder")
	}
	if _, err := os.Stat(filepath.Join(out, workerproto.ResultFile)); err != nil {
		t.Errorf("no result file: %v", err)
	}
}

// A follow cut short by its context returns the context's error.
func TestFollowEndsWithContext(t *testing.T) {
	rt := New(func(docker.Spec) Script { return Script{Hang: true} })
	id, _ := start(t, rt, docker.Spec{Name: "c"})
	defer func() { _ = rt.Remove(context.Background(), id) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := rt.Logs(ctx, id, true, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("follow ended with %v, want the context's error", err)
	}
}

package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// TestBenchTinyRun builds everything the bench needs and runs a tiny
// configuration against the real engine: it proves the bench works and
// prints its table, not how fast anything is.
func TestBenchTinyRun(t *testing.T) {
	var out, progress bytes.Buffer
	err := run([]string{"-files", "200", "-repeats", "1", "-tasks", "2", "-only", "phases,large,burst"}, &out, &progress)
	if err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, progress.String())
	}
	table := out.String()
	for _, want := range []string{
		"| figure ",
		"small task: workspace ready → container started",
		"docker run --rm of the image",
		"200-file repo: claim → container started",
		"git worktree add",
		"200-file repo: agent exit → complete",
		"burst of 2: max claim → container started",
		"burst of 2, --max-starting 2: last container started after the first claim",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	for _, absent := range []string{`"Agent started" visible`, "concurrent", "flood", "verify"} {
		if strings.Contains(table, absent) {
			t.Errorf("-only ran a row it does not match (%q):\n%s", absent, table)
		}
	}
	if strings.Count(table, "✔")+strings.Count(table, "✖") != 3 {
		t.Errorf("want a verdict on each of the 3 targets of these rows:\n%s", table)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-repeats", "0"}, {"-only", "nothing-matches"}, {"-files", "-1"}, {"-max-starting", "-1"}} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestStats(t *testing.T) {
	cases := []struct {
		v    []float64
		unit string
		want string
		p50  float64
		p95  float64
	}{
		{[]float64{2, 1, 3}, "s", "1.00 / 2.00 / 3.00 s", 2, 3},
		{[]float64{4, 1, 3, 2}, "s", "1.00 / 2.50 / 4.00 s", 2.5, 4},
		{[]float64{123.4}, "MiB", "123 MiB", 123.4, 123.4},
		{[]float64{12.34, 15}, "/s", "12.3 / 13.7 / 15.0 /s", 13.67, 15},
		{nil, "s", "n/a", math.NaN(), math.NaN()},
	}
	for _, c := range cases {
		if got := stats(c.v, c.unit); got != c.want {
			t.Errorf("stats(%v) = %q, want %q", c.v, got, c.want)
		}
		if got := median(c.v); !near(got, c.p50) {
			t.Errorf("median(%v) = %v, want %v", c.v, got, c.p50)
		}
		if got := pct(c.v, 95); !near(got, c.p95) {
			t.Errorf("pct(%v, 95) = %v, want %v", c.v, got, c.p95)
		}
	}
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 0.01
}

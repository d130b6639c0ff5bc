package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The secrets a CI job hands the runner, by name only.
var ciSecrets = []string{"TRAKKAR_TOKEN", "ANTHROPIC_API_KEY", "GH_TOKEN"}

// secretValue matches what a pasted secret looks like: a token written into
// the file instead of referenced.
var secretValue = regexp.MustCompile(`trk_agent_[A-Za-z0-9]|sk-ant-|ghp_[A-Za-z0-9]|github_pat_|gho_[A-Za-z0-9]|glpat-|crsr_`)

func readCIExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "ci", name))
	if err != nil {
		t.Fatal(err)
	}
	if m := secretValue.Find(b); m != nil {
		t.Errorf("%s holds what looks like a secret value (%q): reference it, never write it", name, m)
	}
	return b
}

// runnerCalls returns the trakkar-agent invocations in a shell script: lines
// whose command is a path ending in /trakkar-agent.
func runnerCalls(script string) [][]string {
	var calls [][]string
	for _, line := range strings.Split(script, "\n") {
		fields := strings.Fields(strings.Trim(strings.TrimSpace(line), "'"))
		if len(fields) > 0 && strings.HasSuffix(strings.Trim(fields[0], `"`), "/trakkar-agent") {
			calls = append(calls, fields[1:])
		}
	}
	return calls
}

// checkRunnerCall fails for an option the CLI does not have: the examples
// must run as written.
func checkRunnerCall(t *testing.T, args []string) {
	t.Helper()
	for _, name := range unknownOptions(args) {
		t.Errorf("the example passes --%s, which trakkar-agent does not have", name)
	}
}

func unknownOptions(args []string) []string {
	known := map[string]bool{}
	for _, f := range runFlags() {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	var unknown []string
	for i, a := range args {
		if i == 0 && a == "doctor" {
			continue
		}
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	return unknown
}

func hasOnce(calls [][]string) bool {
	for _, c := range calls {
		for _, a := range c {
			if a == "--once" {
				return true
			}
		}
	}
	return false
}

// The GitHub Actions example: one job whose steps build the images, then run
// the runner with --once, the secrets coming from the repository's secrets.
func TestGitHubActionsExample(t *testing.T) {
	var wf struct {
		Name string         `yaml:"name"`
		On   map[string]any `yaml:"on"`
		Jobs map[string]struct {
			RunsOn string `yaml:"runs-on"`
			Steps  []struct {
				Name string            `yaml:"name"`
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				Env  map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(readCIExample(t, "github-actions.yml"), &wf); err != nil {
		t.Fatalf("github-actions.yml: %v", err)
	}
	if len(wf.On) == 0 || len(wf.Jobs) != 1 {
		t.Fatalf("want triggers and one job, got on=%v and %d jobs", wf.On, len(wf.Jobs))
	}
	for name, job := range wf.Jobs {
		if job.RunsOn == "" {
			t.Errorf("job %s has no runs-on", name)
		}
		built, ran := -1, -1
		for i, st := range job.Steps {
			if strings.Contains(st.Run, "bash images/build.sh") && built < 0 {
				built = i
			}
			calls := runnerCalls(st.Run)
			for _, c := range calls {
				checkRunnerCall(t, c)
			}
			if len(calls) > 0 {
				// Every step that runs the runner gets the secrets, by reference.
				for _, s := range ciSecrets {
					if want := "${{ secrets." + s + " }}"; st.Env[s] != want {
						t.Errorf("step %q: env %s = %q, want %q", st.Name, s, st.Env[s], want)
					}
				}
			}
			if hasOnce(calls) {
				ran = i
			}
		}
		switch {
		case ran < 0:
			t.Errorf("job %s never runs trakkar-agent --once", name)
		case built < 0 || built > ran:
			t.Errorf("job %s does not build the worker images (bash images/build.sh) before running the runner", name)
		}
	}
}

// The GitLab CI example: a job that builds the images, then runs the runner
// with --once; the secrets are masked CI/CD variables, never set in the file.
func TestGitLabCIExample(t *testing.T) {
	var doc map[string]struct {
		Tags         []string          `yaml:"tags"`
		Rules        []map[string]any  `yaml:"rules"`
		Variables    map[string]string `yaml:"variables"`
		BeforeScript []string          `yaml:"before_script"`
		Script       []string          `yaml:"script"`
	}
	if err := yaml.Unmarshal(readCIExample(t, "gitlab-ci.yml"), &doc); err != nil {
		t.Fatalf("gitlab-ci.yml: %v", err)
	}
	job, ok := doc["trakkar-agent"]
	if !ok {
		t.Fatalf("no trakkar-agent job: %v", doc)
	}
	if len(job.Script) == 0 || len(job.Rules) == 0 || len(job.Tags) == 0 {
		t.Fatalf("the job needs tags (a Docker shell runner), rules and a script: %+v", job)
	}
	before := strings.Join(job.BeforeScript, "\n")
	script := strings.Join(job.Script, "\n")
	if !strings.Contains(before, "bash images/build.sh") {
		t.Errorf("before_script does not build the worker images:\n%s", before)
	}
	calls := runnerCalls(script)
	if !hasOnce(calls) {
		t.Errorf("script never runs trakkar-agent --once:\n%s", script)
	}
	for _, c := range append(runnerCalls(before), calls...) {
		checkRunnerCall(t, c)
	}
	for _, s := range ciSecrets {
		if _, set := job.Variables[s]; set {
			t.Errorf("variables set %s in the file: it must be a masked CI/CD variable", s)
		}
		if !strings.Contains(before, s) {
			t.Errorf("before_script does not check that %s is set", s)
		}
	}
}

// The checks themselves can fail: an unknown option and a pasted token are seen.
func TestCIExampleChecksCanFail(t *testing.T) {
	if got := unknownOptions([]string{"doctor", "--once", "--no-such-option=1", "--image", "x"}); len(got) != 1 || got[0] != "no-such-option" {
		t.Errorf("unknownOptions = %v, want [no-such-option]", got)
	}
	for _, pasted := range []string{"TRAKKAR_TOKEN: trk_agent_abc123", "GH_TOKEN: ghp_abc", "ANTHROPIC_API_KEY: sk-ant-api03-x"} {
		if !secretValue.MatchString(pasted) {
			t.Errorf("a pasted secret passes: %q", pasted)
		}
	}
	if calls := runnerCalls("go build -o \"$BIN/trakkar-agent\" ./cmd/trakkar-agent\n\"$BIN/trakkar-agent\" --once"); len(calls) != 1 || !hasOnce(calls) {
		t.Errorf("runnerCalls = %v", calls)
	}
}

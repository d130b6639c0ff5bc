package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/trakkar/trakkar-agent/internal/forge"
)

func readOptionsDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "options.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableRows maps the first cell of every table row ("`--x`") to its cells.
func tableRows(doc, section string) map[string][]string {
	rows := map[string][]string{}
	start := strings.Index(doc, section)
	if start < 0 {
		return rows
	}
	body := doc[start+len(section):]
	if end := strings.Index(body, "\n#"); end >= 0 {
		body = body[:end]
	}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells
	}
	return rows
}

func numeric(f cli.Flag) bool {
	switch f.(type) {
	case *cli.IntFlag, *cli.Int64Flag, *cli.Float64Flag, *cli.UintFlag, *cli.Uint64Flag, *cli.DurationFlag:
		return true
	}
	return false
}

// docs/options.md documents every option of every command, with its
// environment variable, and for every number what 0 means.
func TestOptionsDocCoversEveryOption(t *testing.T) {
	doc := readOptionsDoc(t)
	app := newApp()
	sections := []struct {
		heading string
		flags   []cli.Flag
	}{{"## Running: `trakkar-agent [options]`", app.Flags}}
	for _, c := range app.Commands {
		if c.Name == "doctor" {
			continue // the run options, documented once
		}
		sections = append(sections, struct {
			heading string
			flags   []cli.Flag
		}{"### `trakkar-agent " + c.Name + " [options]`", c.Flags})
	}
	if !strings.Contains(doc, "## `trakkar-agent doctor [options]`") {
		t.Error("docs/options.md has no doctor section")
	}
	for _, s := range sections {
		rows := tableRows(doc, s.heading)
		if len(rows) == 0 {
			t.Errorf("docs/options.md has no table under %s", s.heading)
			continue
		}
		for _, f := range s.flags {
			name := "`--" + f.Names()[0] + "`"
			row, ok := rows[name]
			if !ok {
				t.Errorf("%s: %s is not documented", s.heading, name)
				continue
			}
			if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
				for _, env := range ev.GetEnvVars() {
					if len(row) < 2 || row[1] != "`"+env+"`" {
						t.Errorf("%s: %s's row does not name its variable %s: %v", s.heading, name, env, row)
					}
				}
			}
			// The run options say what 0 means for every number (column 5).
			if s.heading == sections[0].heading && numeric(f) && (len(row) < 5 || row[4] == "") {
				t.Errorf("%s: %s does not say what 0 means", s.heading, name)
			}
		}
	}
}

// getenvCall finds the variables the CLI reads directly.
var getenvCall = regexp.MustCompile(`os\.(?:Getenv|LookupEnv)\("([A-Z0-9_]+)"\)`)

// Every variable the runner reads outside its flags is documented too.
func TestOptionsDocCoversEveryVariable(t *testing.T) {
	doc := readOptionsDoc(t)
	vars := map[string]bool{"DOCKER_HOST": true} // read by the Docker SDK (client.FromEnv)
	for _, names := range modelKeyNames {
		for _, n := range names {
			vars[n] = true
		}
	}
	for _, n := range forge.TokenEnv {
		vars[n] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range getenvCall.FindAllStringSubmatch(string(src), -1) {
			vars[m[1]] = true
		}
	}
	for _, must := range []string{"TRAKKAR_RUNNER_ID", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"} {
		if !vars[must] {
			t.Errorf("the scan missed %s, which the CLI reads", must)
		}
	}
	for v := range vars {
		if !strings.Contains(doc, "`"+v+"`") {
			t.Errorf("docs/options.md does not document %s", v)
		}
	}
}

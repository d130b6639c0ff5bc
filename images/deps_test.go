package images_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// modulePath is this repository's module.
const modulePath = "github.com/trakkar/trakkar-agent"

// precompileSteps are the Dockerfile lines that compile cmd/build-deps.txt
// before the code is copied in.
var precompileSteps = []string{
	"COPY go.mod go.sum cmd/build-deps.txt ./",
	"RUN CGO_ENABLED=0 go build -trimpath $(sed '/^#/d' build-deps.txt)",
}

// TestDockerfilesPrecompileTheImports: cmd/build-deps.txt names every package
// from outside this module that the two commands import, and both production
// Dockerfiles compile it before the code is copied in. A package missing from
// the list still builds, only on every code change again; this keeps the list
// from rotting.
func TestDockerfilesPrecompileTheImports(t *testing.T) {
	root := repoRoot(t)
	out := run(t, 2*time.Minute, nil, "go", "list", "-deps",
		"-f", `{{if .Module}}{{if eq .Module.Path "`+modulePath+`"}}{{join .Imports "\n"}}{{end}}{{end}}`,
		"./cmd/trakkar-agent", "./cmd/trakkar-worker")
	var imported []string
	for _, p := range strings.Fields(out) {
		if strings.HasPrefix(p, modulePath+"/") || !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			continue // this module's own, or the standard library (no dot in its first element)
		}
		if !slices.Contains(imported, p) {
			imported = append(imported, p)
		}
	}
	slices.Sort(imported)
	if len(imported) == 0 {
		t.Fatal("go list found no outside imports; the filter is wrong")
	}
	b, err := os.ReadFile(filepath.Join(root, "cmd", "build-deps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			listed = append(listed, line)
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, imported) {
		t.Errorf("cmd/build-deps.txt lists\n  %v\nbut the commands import\n  %v", listed, imported)
	}
	for _, df := range []string{"images/base/Dockerfile", "images/supervisor/Dockerfile"} {
		b, err := os.ReadFile(filepath.Join(root, df))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		copyAt := strings.Index(text, "\nCOPY . .\n")
		for _, step := range precompileSteps {
			at := strings.Index(text, "\n"+step+"\n")
			if at < 0 || copyAt < 0 || at > copyAt {
				t.Errorf("%s: no line %q before COPY . .", df, step)
			}
		}
	}
}

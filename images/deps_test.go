package images_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// modulePath is this repository's module.
const modulePath = "github.com/trakkar/trakkar-agent"

// precompiled returns the packages a Dockerfile compiles before the
// repository's code is copied in: the `go build` step that names packages.
func precompiled(t *testing.T, dockerfile string) []string {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 go build -trimpath\s+((?:[a-z0-9.]+\.[a-z]+/\S+\s*)+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no `go build -trimpath <packages>` step before the code is copied", dockerfile)
	}
	return strings.Fields(m[1])
}

// TestDockerfilesPrecompileTheImports: the production Dockerfiles compile every
// package from outside this module that the two commands import, in the same
// step, before the code is copied in. A package missing from the list still
// builds, only on every code change again; this keeps the list from rotting.
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
	for _, df := range []string{"images/base/Dockerfile", "images/supervisor/Dockerfile"} {
		got := precompiled(t, filepath.Join(root, df))
		slices.Sort(got)
		if !slices.Equal(got, imported) {
			t.Errorf("%s precompiles\n  %v\nbut the commands import\n  %v", df, got, imported)
		}
	}
}

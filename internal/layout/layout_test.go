// Package layout_test holds the module's import rules: the Docker SDK stays
// inside internal/docker, and the fakes stay out of production builds.
package layout_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/trakkar/trakkar-agent"

// sdkPrefixes are the Docker SDK's modules; only internal/docker imports them,
// so the runtime stays behind one narrow package.
var sdkPrefixes = []string{"github.com/docker/docker/", "github.com/docker/go-connections/"}

// fakes are test doubles and test helpers. A non-test build imports them only
// from inside the fakes themselves (the fake CLI mains) or by an allowed pair.
var fakes = []string{
	module + "/internal/fakeagent",
	module + "/internal/fakegithub",
	module + "/internal/standin",
	module + "/internal/testimage",
}

// allowed lists the production packages that may carry a fake in their build:
// the dev-server of trakkar-agent serves the Trakkar stand-in, and the bench
// command (never shipped) sets up the same world as the end-to-end tests.
var allowed = map[string][]string{
	module + "/cmd/trakkar-agent": {module + "/internal/standin"},
	module + "/internal/bench":    {module + "/internal/standin", module + "/internal/fakegithub", module + "/internal/testimage"},
}

type pkg struct {
	ImportPath   string
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages; the rules would check nothing", len(pkgs))
	}
	for _, p := range pkgs {
		if p.ImportPath != module+"/internal/docker" {
			for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
				if isSDK(imp) {
					t.Errorf("%s imports the Docker SDK %s; only internal/docker may", p.ImportPath, imp)
				}
			}
		}
		if fakeRoot(p.ImportPath) != "" {
			continue
		}
		// Deps is the whole non-test build, so a fake pulled in through
		// another package counts too.
		for _, dep := range p.Deps {
			if f := fakeRoot(dep); f != "" && !slices.Contains(allowed[p.ImportPath], f) {
				t.Errorf("production package %s carries the fake %s in its build; only tests may import it", p.ImportPath, dep)
			}
		}
	}
}

func TestRuleHelpers(t *testing.T) {
	for _, c := range []struct {
		path string
		sdk  bool
		fake string
	}{
		{"github.com/docker/docker/client", true, ""},
		{"github.com/docker/go-connections/nat", true, ""},
		{"github.com/docker/dockerx/client", false, ""},
		{module + "/internal/fakeagent", false, module + "/internal/fakeagent"},
		{module + "/internal/fakeagent/claude", false, module + "/internal/fakeagent"},
		{module + "/internal/fakeagentx", false, ""},
		{module + "/internal/standin", false, module + "/internal/standin"},
		{module + "/internal/docker", false, ""},
	} {
		if got := isSDK(c.path); got != c.sdk {
			t.Errorf("isSDK(%q) = %v, want %v", c.path, got, c.sdk)
		}
		if got := fakeRoot(c.path); got != c.fake {
			t.Errorf("fakeRoot(%q) = %q, want %q", c.path, got, c.fake)
		}
	}
}

// listPackages runs go list over the whole module; go test puts its own
// GOROOT/bin first on PATH, so this is the toolchain that built the test.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps,TestImports,XTestImports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func isSDK(path string) bool {
	for _, p := range sdkPrefixes {
		if strings.HasPrefix(path, p) || path == strings.TrimSuffix(p, "/") {
			return true
		}
	}
	return false
}

// fakeRoot returns the fake that path is, or lies under, or "".
func fakeRoot(path string) string {
	for _, f := range fakes {
		if path == f || strings.HasPrefix(path, f+"/") {
			return f
		}
	}
	return ""
}

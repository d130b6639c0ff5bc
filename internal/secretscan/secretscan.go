// Package secretscan refuses a change that would publish a secret: it looks for
// every secret the runner knows, in every encoding masking covers, in the paths,
// link targets and file contents of the change the agent left, before anything
// is committed or pushed.
package secretscan

import (
	"fmt"
	"io"
	"strings"

	"github.com/trakkar/trakkar-agent/internal/hostgit"
)

// Matcher finds secrets in text; *redact.Redactor is one.
type Matcher interface {
	Empty() bool
	Contains(s string) bool
	ReaderContains(r io.Reader) (bool, error)
	String(s string) string
}

// Finding is one path of the change that may not be published. Path is masked:
// the name itself may be the secret.
type Finding struct {
	Path   string
	Reason string
}

func (f Finding) String() string { return f.Path + ": " + f.Reason }

// Scan checks changes (paths relative to root, the worktree) for secrets. Files
// are read from the worktree without following any symlink, and a file that
// cannot be read that way is a finding too: what is not scanned is not
// published.
func Scan(root string, changes []hostgit.Change, m Matcher) []Finding {
	if m == nil || m.Empty() {
		return nil
	}
	var out []Finding
	add := func(c hostgit.Change, reason string) {
		out = append(out, Finding{Path: m.String(c.Path), Reason: reason})
	}
	for _, c := range changes {
		if m.Contains(c.Path) {
			add(c, "its name holds a secret")
			continue
		}
		if c.Status == "D" || c.Status == hostgit.StatusNotStaged {
			continue
		}
		switch c.Mode {
		case hostgit.ModeSymlink:
			if m.Contains(c.LinkTarget) {
				add(c, "its link target holds a secret")
			}
		case hostgit.ModeFile, hostgit.ModeExec:
			found, err := scanFile(root, c.Path, m)
			switch {
			case err != nil:
				add(c, "it could not be read to check for secrets: "+oneLine(m.String(err.Error())))
			case found:
				add(c, "it holds a secret")
			}
		}
	}
	return out
}

// Error is the one-line reason for refusing the change.
func Error(found []Finding) string {
	parts := make([]string, len(found))
	for i, f := range found {
		parts[i] = f.String()
	}
	return fmt.Sprintf("the change would publish a secret the runner holds (%s)", strings.Join(parts, "; "))
}

func scanFile(root, rel string, m Matcher) (bool, error) {
	f, err := openBeneath(root, rel)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return m.ReaderContains(f)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

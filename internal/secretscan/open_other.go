//go:build !unix

package secretscan

import (
	"errors"
	"os"
)

// openBeneath has no symlink-safe implementation here: refuse rather than
// follow links.
func openBeneath(root, rel string) (*os.File, error) {
	return nil, errors.New("cannot open files without following symlinks on this system")
}

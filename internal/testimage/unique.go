package testimage

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
)

var (
	runOnce sync.Once
	runID   string
)

// RunID is random per test process. Tests put it into every runner id,
// container, network and volume name they make, so two copies of the suite on
// one engine never touch each other's objects.
func RunID() string {
	runOnce.Do(func() {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		runID = hex.EncodeToString(b)
	})
	return runID
}

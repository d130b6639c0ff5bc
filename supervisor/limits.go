package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// Bounds of the numeric options: below or above them a value is a typo or a
// misunderstanding, never a configuration that works.
const (
	MaxConcurrencyLimit = 64        // tasks at once; each is a container and an agent
	MinMemoryMB         = 128       // below it the worker and an agent CLI do not start
	MinCPUs             = 0.01      // the engine's own floor for --cpus
	MinPidsLimit        = 64        // an agent CLI runs tens of threads and processes
	MaxPidsLimit        = 1 << 22   // the kernel's pid_max ceiling
	MaxFileMBLimit      = 10240     // git stores it, GitHub refuses files over 100 MiB anyway
	MaxFilesLimit       = 1_000_000 // paths in one change
	MaxIntervalSeconds  = 3600
	MaxTimeoutSeconds   = 24 * 3600
	MaxStopGraceSeconds = 3600
	MaxVerifyRetries    = 20
)

// limit is one numeric option's value, in the option's unit, and its range.
type limit struct {
	option   string
	value    float64
	min, max float64 // min applies to non-zero values; max 0: no upper bound
	zeroOK   bool    // 0 has a documented meaning
	zeroHint string  // why 0 is refused, and what to use instead
}

// limits lists every numeric option with its bounds. What 0 means where it
// is allowed is said in the CLI's help and docs/options.md.
func (c *Config) limits() []limit {
	const mib = 1 << 20
	return []limit{
		{option: "--interval", value: c.Interval.Seconds(), max: MaxIntervalSeconds, zeroHint: " (seconds between polls; the default is 15)"},
		{option: "--timeout", value: c.VerifyTimeout.Seconds(), max: MaxTimeoutSeconds, zeroHint: " (the verify command needs a time limit, in seconds; the default is 1800)"},
		{option: "--verify-retries", value: float64(c.VerifyRetries), max: MaxVerifyRetries, zeroOK: true},
		{option: "--max-concurrency", value: float64(c.MaxConcurrency), max: MaxConcurrencyLimit, zeroOK: true},
		{option: "--max-starting", value: float64(c.MaxStarting), max: MaxStartingLimit, zeroOK: true},
		{option: "--stop-grace", value: c.StopGrace.Seconds(), max: MaxStopGraceSeconds, zeroHint: " (seconds an agent gets to stop before SIGKILL; the default is 10)"},
		{option: "--poll-wait", value: c.PollWait.Seconds(), max: 30, zeroOK: true},
		{option: "--memory-mb", value: float64(c.Resources.MemoryBytes) / mib, min: MinMemoryMB, zeroHint: " (a task container always has a memory limit)"},
		{option: "--cpus", value: float64(c.Resources.NanoCPUs) / 1e9, min: MinCPUs, zeroHint: " (a task container always has a CPU limit)"},
		{option: "--pids-limit", value: float64(c.Resources.PidsLimit), min: MinPidsLimit, max: MaxPidsLimit, zeroHint: " (a task container always has a process limit)"},
		{option: "--max-file-mb", value: float64(c.Policy.MaxFileBytes) / mib, max: MaxFileMBLimit, zeroHint: " (0 would refuse every added file; there is no unlimited)"},
		{option: "--max-files", value: float64(c.Policy.MaxFiles), min: 1, max: MaxFilesLimit, zeroHint: " (0 would refuse every change; there is no unlimited)"},
		{option: "--min-free-mb", value: float64(c.MinFreeBytes) / mib, zeroOK: true},
		{option: "--max-workspace-mb", value: float64(c.MaxWorkspaceMB), zeroOK: true},
		{option: "the event retry cap", value: c.EventRetryMax.Seconds(), zeroOK: true},
	}
}

// Host is what the machine offers task containers: the engine's CPUs and
// memory and the size of the disk holding the workspaces. Zero: unknown.
type Host struct {
	CPUs        int
	MemoryBytes int64
	DiskBytes   int64
}

// CheckHost refuses limits the machine cannot meet: a container may not get
// more CPUs or memory than the engine has, and --min-free-mb may not ask for
// more free space than the disk holds (every workspace would be refused).
func (c *Config) CheckHost(h Host) error {
	var errs []error
	if h.CPUs > 0 && c.Resources.NanoCPUs > int64(h.CPUs)*1e9 {
		errs = append(errs, fmt.Errorf("--cpus %g is more than the Docker engine's %d CPUs", float64(c.Resources.NanoCPUs)/1e9, h.CPUs))
	}
	if h.MemoryBytes > 0 && c.Resources.MemoryBytes > h.MemoryBytes {
		errs = append(errs, fmt.Errorf("--memory-mb %d is more than the Docker engine's %d MiB of memory", c.Resources.MemoryBytes>>20, h.MemoryBytes>>20))
	}
	if h.DiskBytes > 0 && c.MinFreeBytes > h.DiskBytes {
		errs = append(errs, fmt.Errorf("--min-free-mb %d is more than the %d MiB disk holding %s: no workspace could ever be created", c.MinFreeBytes>>20, h.DiskBytes>>20, c.WorktreeRoot))
	}
	return errors.Join(errs...)
}

// DiskSize is the total size of the filesystem holding path (or its nearest
// existing parent).
func DiskSize(path string) (int64, error) {
	var st syscall.Statfs_t
	for p := path; ; p = filepath.Dir(p) {
		if err := syscall.Statfs(p, &st); err == nil {
			return int64(st.Blocks) * st.Bsize, nil
		} else if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return 0, fmt.Errorf("disk size of %s: %w", path, err)
		}
	}
}

// FreeDisk is the space available to unprivileged writers on the filesystem
// holding path, as the workspace check sees it.
func FreeDisk(path string) (uint64, error) { return freeBytes(path) }

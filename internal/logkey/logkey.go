// Package logkey names the fields that identify a run in the logs, once, so
// every package spells them alike and a log shipper can rely on them.
package logkey

// Field keys. A logger that already carries one (a run's logger is built
// With the run's ids) must not be given it again: zap does not merge fields,
// and a JSON line would hold the key twice.
const (
	RunID       = "run_id"
	TaskID      = "task_id"
	TaskKey     = "task_key"
	Attempt     = "attempt" // the run's attempt at its task
	ContainerID = "container_id"
	Outcome     = "outcome"
	Reason      = "reason" // why a run failed, in the words Trakkar was given
	PRURL       = "pr_url"
)

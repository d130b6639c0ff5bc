package supervisor

import "github.com/trakkar/trakkar-agent/internal/hostgit"

// runSlug names one run of one task in Docker object names: the task folder
// and the run id, cut so a name stays within Docker's limits.
func runSlug(ws *workspace, r *run) string {
	return ws.key + "-" + hostgit.Slug(r.claim.Run.ID, 40)
}

// containerName is the name of a run's agent container; its verify and egress
// containers add a suffix to it.
func containerName(ws *workspace, r *run) string {
	return "trakkar-" + runSlug(ws, r)
}

// Command trakkar-agent is the self-hosted runner for Trakkar's AI task
// delegation: it claims delegated tasks and works each in a fresh container.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// usageError marks bad input: one line on stderr and exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	os.Exit(runCLI(os.Args))
}

func runCLI(args []string) int {
	app := newApp()
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(os.Stderr, "trakkar-agent: "+ue.msg)
		return 2
	}
	fmt.Fprintln(os.Stderr, "trakkar-agent: "+err.Error())
	return 1
}

func newApp() *cli.App {
	app := &cli.App{
		Name:    "trakkar-agent",
		Usage:   "run Trakkar's delegated tasks with an AI agent, each in its own container",
		Version: runnerVersion(),
		Description: "Run it inside the git repository the agent should work on. It watches Trakkar for delegated\n" +
			"tasks, works up to --max-concurrency of them at once, each in a fresh container on its own\n" +
			"worktree and branch, streams progress into the task, and opens a pull request.\n\n" +
			"One runner per repository clone: a second one on the same clone (or with the same\n" +
			"TRAKKAR_RUNNER_ID on this host) exits at once. SIGINT/SIGTERM while starting stop it at\n" +
			"once; while running the first drains, the second aborts.\n" +
			"Exit status: 0 after a clean stop (signals included), 1 on an error, 2 on bad input or\n" +
			"when another runner already works this repository. With --once: 0 when every claimed run\n" +
			"succeeded or had no changes, 1 when any failed or was stopped; a line per run says how it ended.",
		Flags:           runFlags(),
		Action:          runAction,
		HideHelpCommand: true,
		Commands: []*cli.Command{
			devServerCommand(),
			doctorCommand(),
			pruneCommand(),
			statusCommand(),
			healthzCommand(),
		},
		// Errors are printed once, by runCLI, as a single line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return badInput("%v (see --help)", err)
		},
	}
	// A command's bad flag is bad input too: one line, exit 2, not its help.
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
	}
	return app
}

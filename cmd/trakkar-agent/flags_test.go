package main

import (
	"os"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/trakkar/trakkar-agent/supervisor"
)

// The flags' defaults are the supervisor's: defaults are written in one place.
func TestFlagDefaultsAreTheSupervisorDefaults(t *testing.T) {
	for _, env := range []string{"TRAKKAR_PROVIDER", "TRAKKAR_IMAGE", "TRAKKAR_MAX_WORKSPACE_MB", "TRAKKAR_API_URL", "GITHUB_API_URL"} {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	var got supervisor.Config
	app := &cli.App{Flags: runFlags(), Action: func(c *cli.Context) error {
		st, err := checkFlags(c)
		if err != nil {
			return err
		}
		got = st.cfg
		return nil
	}}
	if err := app.Run([]string{"trakkar-agent", "--token", "t"}); err != nil {
		t.Fatal(err)
	}
	if want := supervisor.Defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("flags give\n%+v\nwant supervisor.Defaults()\n%+v", got, want)
	}
}

package main

import (
	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/criuns"
)

var criuCommand = &cli.Command{
	Name:            "criu",
	Usage:           "criu-ns mode: take CRIU's own command line (as the `criu-ns` symlink does)",
	ArgsUsage:       "<criu arguments>",
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		env := criunsEnv()
		if c.IsSet("root") {
			env.Root = c.String("root")
		}
		if code := criuns.Main(c.Args().Slice(), env); code != 0 {
			return exitCode(code)
		}
		return nil
	},
}

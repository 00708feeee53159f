package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var killCommand = &cli.Command{
	Name:      "kill",
	Usage:     "send a signal to a container's tree (default TERM)",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process in the container"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() == 0 || c.NArg() > 2 {
			return fmt.Errorf("kill: want <container-id> [signal], got %d arguments", c.NArg())
		}
		id, sigName := c.Args().Get(0), "TERM"
		if c.NArg() == 2 {
			sigName = c.Args().Get(1)
		}
		sig, err := shim.ParseSignal(sigName)
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return rt.Kill(id, sig, c.Bool("all"))
	},
}

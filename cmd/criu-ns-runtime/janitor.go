package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// janitorCommand is internal: the detached process that removes an
// ephemeral (criu-ns mode) container once its tree ends. The runtime
// starts it itself.
var janitorCommand = &cli.Command{
	Name:      shim.JanitorCommand,
	Hidden:    true,
	ArgsUsage: "<container-id> <created>",
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return fmt.Errorf("%s: internal command: want <container-id> <created>", shim.JanitorCommand)
		}
		created, err := time.Parse(time.RFC3339Nano, c.Args().Get(1))
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return rt.Janitor(c.Args().Get(0), created, os.NewFile(3, "restore"))
	},
}

package main

import (
	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var deleteCommand = &cli.Command{
	Name:      "delete",
	Usage:     "delete a stopped container (--force: kill it first)",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"},
	},
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		return rt.Delete(id, c.Bool("force"))
	}),
}

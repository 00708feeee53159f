package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var pauseCommand = &cli.Command{
	Name:      "pause",
	Usage:     "freeze every process of a container",
	ArgsUsage: "<container-id>",
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		return rt.Pause(id)
	}),
}

var resumeCommand = &cli.Command{
	Name:      "resume",
	Usage:     "thaw a paused container",
	ArgsUsage: "<container-id>",
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		return rt.Resume(id)
	}),
}

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "change a container's cgroup resources",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "OCI LinuxResources JSON file, or - for stdin"},
	},
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		var in io.Reader
		switch path := c.String("resources"); path {
		case "":
			return fmt.Errorf("update: --resources is required")
		case "-":
			in = os.Stdin
		default:
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
			defer f.Close()
			in = f
		}
		return rt.Update(id, in)
	}),
}

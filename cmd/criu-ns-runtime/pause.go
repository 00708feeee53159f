package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

var pauseCommand = &cli.Command{
	Name:      "pause",
	Usage:     "freeze every process of a container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		id, err := containerID(c)
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return rt.Pause(id)
	},
}

var resumeCommand = &cli.Command{
	Name:      "resume",
	Usage:     "thaw a paused container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		id, err := containerID(c)
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return rt.Resume(id)
	},
}

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "change a container's cgroup resources",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "OCI LinuxResources JSON file, or - for stdin"},
	},
	Action: func(c *cli.Context) error {
		id, err := containerID(c)
		if err != nil {
			return err
		}
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
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return rt.Update(id, in)
	},
}

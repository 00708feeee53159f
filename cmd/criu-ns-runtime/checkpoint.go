package main

import (
	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var checkpointCommand = &cli.Command{
	Name:      "checkpoint",
	Usage:     "dump a container's tree with CRIU, from inside its namespaces",
	ArgsUsage: "[-- CRIU-ARGS...] <container-id>",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "image-path", Usage: "directory for the images (default ./checkpoint)"},
		&cli.StringFlag{Name: "work-path", Usage: "directory for dump.log (default: the image path)"},
		&cli.BoolFlag{Name: "leave-running", Usage: "keep the tree running after the dump"},
		&cli.BoolFlag{Name: "pre-dump", Usage: "save memory only, for a later incremental dump (needs soft-dirty tracking)"},
		&cli.StringFlag{Name: "parent-path", Usage: "images of an earlier (pre-)dump to dump incrementally onto: ../DIR (relative to the image path) or absolute (needs soft-dirty tracking)"},
		timeoutFlag("dump"),
	}, append(criuFlags, ociCRIUFlags...)...),
	Action: func(c *cli.Context) error {
		id, extra, err := idAndCRIUArgs(c)
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return rt.Checkpoint(shim.CheckpointOptions{
			ID: id, ImagePath: defaultImagePath(c), WorkPath: c.String("work-path"),
			LeaveRunning: c.Bool("leave-running"), PreDump: c.Bool("pre-dump"), Timeout: c.Duration("timeout"),
			CRIU: criuOptions(c, extra), OCI: ociCRIUOptions(c),
		})
	},
}

package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/mountns"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var receiveCommand = &cli.Command{
	Name:      "receive",
	Usage:     "accept one migration from `migrate` and restore it into a new tree container",
	ArgsUsage: "[-- CRIU-ARGS...] <container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "listen", Usage: "ADDR:PORT to accept the migration on (required)"},
		&cli.StringFlag{Name: "image-path", Usage: "where the images go: a new or empty directory (default ./checkpoint)"},
		&cli.StringFlag{Name: "work-path", Usage: "directory for CRIU's logs (default: the image path)"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the restored root's pid here once it runs"},
		&cli.DurationFlag{Name: "timeout", Value: shim.DefaultMigrateTimeout, Usage: "give up when the source has been silent this long"},
	},
	Action: func(c *cli.Context) error {
		if !mountns.Private() {
			// The restore stages the host's root: not in the host's
			// mount table.
			return mountns.Reexec()
		}
		id, extra, err := idAndCRIUArgs(c)
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		_, err = rt.Receive(shim.ReceiveOptions{
			ID: id, Listen: c.String("listen"), ImagePath: defaultImagePath(c), WorkPath: c.String("work-path"),
			PidFile: c.String("pid-file"), Timeout: c.Duration("timeout"), CRIU: shim.CRIUOptions{Extra: extra},
		})
		return err
	},
}

// receiveJanitorCommand undoes what a receive made if it dies half-way
// (shim's RunJanitor); a receive starts it, nobody else.
var receiveJanitorCommand = &cli.Command{
	Name:   "receive-janitor",
	Hidden: true,
	Action: func(c *cli.Context) error {
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return rt.RunJanitor(os.Stdin)
	},
}

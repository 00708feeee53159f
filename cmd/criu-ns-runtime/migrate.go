package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var migrateCommand = &cli.Command{
	Name:      "migrate",
	Usage:     "move a running tree container to the host where `receive` listens",
	ArgsUsage: "[-- CRIU-ARGS...] <container-id>",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "ADDR:PORT of the destination's `receive` (required)"},
		&cli.BoolFlag{Name: "lazy", Usage: "post-copy: restore there at once, then send the memory as the tree touches it (userfaultfd on the destination)"},
		&cli.IntFlag{Name: "pre-copy", Usage: "copy the memory in `N` rounds while the tree runs, then only what changed (needs soft-dirty tracking)"},
		&cli.DurationFlag{Name: "timeout", Value: shim.DefaultMigrateTimeout, Usage: "give up when the destination has been silent this long"},
		&cli.StringFlag{Name: "work-path", Usage: "keep CRIU's logs here (default: none are kept)"},
		&cli.StringFlag{Name: "stats", Usage: "write what the migration took (JSON) to this file"},
	}, criuFlags...),
	Action: func(c *cli.Context) error {
		id, extra, err := idAndCRIUArgs(c)
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		stats, err := rt.Migrate(shim.MigrateOptions{
			ID: id, To: c.String("to"), Lazy: c.Bool("lazy"), PreCopy: c.Int("pre-copy"),
			WorkPath: c.String("work-path"), Timeout: c.Duration("timeout"), CRIU: criuOptions(c, extra),
		})
		if err != nil {
			return err
		}
		return writeStats(c.String("stats"), stats)
	},
}

// writeStats writes a migration's stats as JSON, if asked to.
func writeStats(path string, stats *shim.MigrateStats) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(stats, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

package main

import (
	"bufio"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list containers",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print ids only"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() > 0 {
			return fmt.Errorf("list: unexpected argument %q", c.Args().First())
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		states, err := rt.List()
		if err != nil {
			return err
		}
		// One write for the lot: tabwriter writes each cell on its own.
		out := bufio.NewWriter(os.Stdout)
		if c.Bool("quiet") {
			for _, s := range states {
				fmt.Fprintln(out, s.ID)
			}
			return out.Flush()
		}
		switch f := c.String("format"); f {
		case "json":
			return printJSON(states, "")
		case "table":
			w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
					s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			return out.Flush()
		default:
			return fmt.Errorf("list: unknown format %q (want table or json)", f)
		}
	},
}

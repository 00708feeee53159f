package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var stateCommand = &cli.Command{
	Name:      "state",
	Usage:     "print a container's state as JSON",
	ArgsUsage: "<container-id>",
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		s, err := rt.State(id)
		if err != nil {
			return err
		}
		return printJSON(s, "  ")
	}),
}

func printJSON(v any, indent string) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", indent)
	return enc.Encode(v)
}

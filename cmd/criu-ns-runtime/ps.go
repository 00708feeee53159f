package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var psCommand = &cli.Command{
	Name:      "ps",
	Usage:     "list a container's processes (host pids)",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
	},
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		f := c.String("format")
		if f != "table" && f != "json" {
			return fmt.Errorf("ps: unknown format %q (want table or json)", f)
		}
		pids, err := rt.Processes(id)
		if err != nil {
			return err
		}
		if f == "json" {
			if pids == nil {
				pids = []int{}
			}
			return printJSON(pids, "")
		}
		fmt.Println("PID\tCMD")
		for _, pid := range pids {
			cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			fmt.Printf("%d\t%s\n", pid, strings.Join(strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " ")), " "))
		}
		return nil
	}),
}

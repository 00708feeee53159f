package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

var checkCommand = &cli.Command{
	Name:  "check",
	Usage: "check that CRIU and the kernel can do what the runtime needs",
	Action: func(c *cli.Context) error {
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		if err := rt.Check(); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		fmt.Println(rt.CheckIncremental())
		fmt.Println("Looks good.")
		return nil
	},
}

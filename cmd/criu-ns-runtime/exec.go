package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "run a new process in a running container",
	ArgsUsage: "<container-id> [command...]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "OCI process JSON file"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process runs"},
		&cli.BoolFlag{Name: "ignore-paused", Usage: "exec even if the container is paused (the process waits for resume)"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the process's pid here"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra fds (from fd 3) to the process"},
		pidfdSocketFlag,
	},
	Action: func(c *cli.Context) error {
		if c.NArg() == 0 {
			return fmt.Errorf("exec: container id is required")
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		detach := c.Bool("detach")
		code, err := rt.Exec(shim.ExecOptions{
			ID: c.Args().First(), ProcessFile: c.String("process"), Args: c.Args().Tail(),
			Tty: c.Bool("tty"), Detach: detach, IgnorePaused: c.Bool("ignore-paused"), PidFile: c.String("pid-file"),
			IO: shim.IO{ConsoleSocket: c.String("console-socket"), PreserveFds: c.Int("preserve-fds"),
				PidfdSocket: c.String("pidfd-socket")},
		}, forwardSignals(detach))
		return foreground(code, err, detach)
	},
}

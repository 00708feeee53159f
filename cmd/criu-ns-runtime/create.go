package main

import (
	"os"
	"os/signal"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// bundleFlags are runc's flags for creating a container from a bundle.
var bundleFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "the OCI bundle (default: the current directory)"},
	&cli.StringFlag{Name: "pid-file", Usage: "write the container init's pid here"},
	&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master of a terminal process"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root to enter the rootfs"},
	&cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring"},
	&cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra fds (from fd 3) to the process"},
	pidfdSocketFlag,
}

// pidfdSocketFlag is runc's: the socket receives the process's pidfd.
var pidfdSocketFlag = &cli.StringFlag{Name: "pidfd-socket", Usage: "unix socket that receives a pidfd of the process"}

func createOptions(c *cli.Context, id string) shim.CreateOptions {
	return shim.CreateOptions{
		ID: id, PidFile: c.String("pid-file"), Bundle: bundleOptions(c), NoSubreaper: c.Bool("no-subreaper"),
	}
}

// bundleOptions are the flags that say how a bundle container is made.
func bundleOptions(c *cli.Context) shim.BundleOptions {
	return shim.BundleOptions{
		Dir: c.String("bundle"),
		IO: shim.IO{ConsoleSocket: c.String("console-socket"), PreserveFds: c.Int("preserve-fds"),
			PidfdSocket: c.String("pidfd-socket")},
		NoPivot: c.Bool("no-pivot"), NoNewKeyring: c.Bool("no-new-keyring"), SystemdCgroup: c.Bool("systemd-cgroup"),
	}
}

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container from an OCI bundle (its process waits for start)",
	ArgsUsage: "<container-id>",
	Flags:     bundleFlags,
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		return rt.Create(createOptions(c, id))
	}),
}

var startCommand = &cli.Command{
	Name:      "start",
	Usage:     "start the process of a created container",
	ArgsUsage: "<container-id>",
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		return rt.Start(id)
	}),
}

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and start a container from an OCI bundle",
	ArgsUsage: "<container-id>",
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process runs"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "a foreground run does not reap the container's orphans"},
	}, bundleFlags...),
	Action: onContainer(func(c *cli.Context, rt *shim.Runtime, id string) error {
		sigs := forwardSignals(c.Bool("detach"))
		code, err := rt.Run(createOptions(c, id), c.Bool("detach"), sigs)
		return foreground(code, err, c.Bool("detach"))
	}),
}

// forwardSignals catches the signals a foreground command passes on to
// its process; nil when detached.
func forwardSignals(detach bool) chan os.Signal {
	if detach {
		return nil
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, foregroundSignals...)
	return sigs
}

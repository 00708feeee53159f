package main

import (
	"os"
	"os/signal"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// criuFlags are the CRIU features both restore and checkpoint offer.
var criuFlags = []cli.Flag{
	&cli.BoolFlag{Name: "tcp-established", Usage: "allow open TCP connections"},
	&cli.BoolFlag{Name: "ext-unix-sk", Usage: "allow external unix sockets"},
	&cli.BoolFlag{Name: "file-locks", Usage: "handle file locks"},
	&cli.BoolFlag{Name: "shell-job", Usage: "the tree is a shell job on the caller's terminal"},
}

func criuOptions(c *cli.Context, extra []string) shim.CRIUOptions {
	return shim.CRIUOptions{
		TCPEstablished: c.Bool("tcp-established"), ExtUnixSk: c.Bool("ext-unix-sk"),
		FileLocks: c.Bool("file-locks"), ShellJob: c.Bool("shell-job"), Extra: extra,
	}
}

// defaultImagePath is runc's: ./checkpoint.
func defaultImagePath(c *cli.Context) string {
	if p := c.String("image-path"); p != "" {
		return p
	}
	cwd, _ := os.Getwd()
	return filepath.Join(cwd, "checkpoint")
}

// foregroundSignals are passed on to the tree by a foreground restore.
var foregroundSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGQUIT}

var restoreCommand = &cli.Command{
	Name:      "restore",
	Usage:     "restore a process tree from CRIU images into a new container",
	ArgsUsage: "[-- CRIU-ARGS...] <container-id>",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "image-path", Usage: "CRIU images to restore (default ./checkpoint)"},
		&cli.StringFlag{Name: "work-path", Usage: "directory for restore.log (default: the image path)"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the tree runs"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the restored root's pid here"},
		&cli.BoolFlag{Name: "lazy-pages", Usage: "start the tree before its memory arrived (userfaultfd)"},
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
		detach := c.Bool("detach")
		var sigs chan os.Signal
		if !detach {
			// Catch signals before the tree exists, so none is lost.
			sigs = make(chan os.Signal, 16)
			signal.Notify(sigs, foregroundSignals...)
		}
		r, err := rt.Restore(shim.RestoreOptions{
			ID: id, ImagePath: defaultImagePath(c), WorkPath: c.String("work-path"),
			PidFile: c.String("pid-file"), CRIU: criuOptions(c, extra),
			LazyPages: c.Bool("lazy-pages"), Stdio: !detach || c.Bool("shell-job"),
		})
		if err != nil || detach {
			return err
		}
		code, err := r.Wait(sigs)
		if err != nil {
			return err
		}
		return exitCode(code)
	},
}

package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
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
		FileLocks: c.Bool("file-locks"), ShellJob: c.Bool("shell-job"), TCPClose: c.Bool("tcp-close"),
		Extra: extra,
	}
}

// ociCRIUFlags are runc's CRIU flags that only libcontainer's own
// checkpoint and restore of bundle containers use.
var ociCRIUFlags = []cli.Flag{
	&cli.StringSliceFlag{Name: "empty-ns", Usage: "namespace type CRIU leaves empty (e.g. network)"},
	&cli.StringFlag{Name: "manage-cgroups-mode", Usage: "CRIU cgroup mode: soft, full, strict or ignore"},
}

func ociCRIUOptions(c *cli.Context) shim.OCICRIUOptions {
	return shim.OCICRIUOptions{
		ParentPath: c.String("parent-path"),
		EmptyNs:    c.StringSlice("empty-ns"), ManageCgroupsMode: c.String("manage-cgroups-mode"),
		LsmProfile: c.String("lsm-profile"), LsmMountContext: c.String("lsm-mount-context"),
	}
}

// timeoutFlag bounds a command's CRIU run.
func timeoutFlag(verb string) cli.Flag {
	return &cli.DurationFlag{Name: "timeout", Usage: "stop CRIU if the " + verb + " takes longer than this (e.g. 30s; default: no limit)"}
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
	Usage:     "restore CRIU images into a new container: a process tree (default) or a bundle's container (--bundle)",
	ArgsUsage: "[-- CRIU-ARGS...] <container-id>",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "image-path", Usage: "CRIU images to restore (default ./checkpoint)"},
		&cli.StringFlag{Name: "work-path", Usage: "directory for restore.log (default: the image path)"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the tree runs"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the restored root's pid (with --bundle: the container init's) here"},
		&cli.BoolFlag{Name: "lazy-pages", Usage: "start the tree before its memory arrived (userfaultfd); with --bundle, a lazy-pages daemon must serve it, as with runc"},
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "restore a container of this OCI bundle (libcontainer's restore, as runc does)"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master (with --bundle)"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root (with --bundle)"},
		&cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring (with --bundle)"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "a foreground restore does not reap the container's orphans (a tree's own init always does)"},
		&cli.BoolFlag{Name: "tcp-close", Usage: "restore established TCP connections closed (tree restores; libcontainer has no such option)"},
		&cli.StringFlag{Name: "lsm-profile", Usage: "LSM profile of the restored container (with --bundle)"},
		&cli.StringFlag{Name: "lsm-mount-context", Usage: "LSM mount context of the restored container (with --bundle)"},
		timeoutFlag("restore"),
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
		detach := c.Bool("detach")
		// Catch signals before the tree exists, so none is lost.
		sigs := forwardSignals(detach)
		r, err := rt.Restore(shim.RestoreOptions{
			Kind: restoreKind(c), ID: id, ImagePath: defaultImagePath(c), WorkPath: c.String("work-path"),
			PidFile: c.String("pid-file"), Detach: detach, NoSubreaper: c.Bool("no-subreaper"),
			LazyPages: c.Bool("lazy-pages"), CRIU: criuOptions(c, extra), Timeout: c.Duration("timeout"),
			Stdio:  !detach || c.Bool("shell-job"),
			Bundle: bundleOptions(c), OCI: ociCRIUOptions(c),
		})
		if err != nil || detach {
			return err
		}
		code, err := r.Wait(sigs)
		return foreground(code, err, false)
	},
}

// restoreKind is the kind of container a restore makes: --bundle names a
// bundle container; otherwise the images are a plain process tree.
func restoreKind(c *cli.Context) bundle.Kind {
	if c.IsSet("bundle") {
		return bundle.KindBundle
	}
	return bundle.KindTree
}

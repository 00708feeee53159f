// Command criu-ns-runtime restores CRIU images into fresh pid and mount
// namespaces and checkpoints them from inside, with runc's command line.
// Each command lives in its own file and calls one function of package
// shim; this package only parses flags and prints results.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	// libcontainer's init re-exec needs nsenter's C constructor, and the
	// cgroup manager needs the devices controller.
	_ "github.com/opencontainers/cgroups/devices"
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	"github.com/criu-ns-runtime/criu-ns-runtime/criuns"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criurpc"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/migrate"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/nsinit"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/phasetrace"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// Set by the Makefile.
var (
	version   = "0.1.0"
	gitCommit = ""
)

const name = "criu-ns-runtime"

func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// libcontainer's own re-exec, after nsenter's constructor ran.
		libcontainer.Init()
	}
}

func main() {
	switch {
	case migrate.IsHook():
		// CRIU runs us as a migration's action script.
		os.Exit(migrate.RunHook())
	case len(os.Args) > 1 && os.Args[1] == "nsinit":
		nsinit.Main()
	case len(os.Args) > 1 && os.Args[1] == criurpc.RelayArg:
		// criu-ns swrk mode's relay inside a container (criuns/swrk).
		criurpc.RelayMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == nsinit.JobHostArg:
		nsinit.JobHostMain()
	case filepath.Base(os.Args[0]) == "criu-ns":
		os.Exit(criuns.Main(os.Args[1:], criunsEnv()))
	}
	phasetrace.Mark("runtime.start")
	code := run(os.Args)
	phasetrace.Mark("runtime.exit")
	os.Exit(code)
}

func newApp() *cli.App {
	app := &cli.App{
		Name:    name,
		Usage:   "restore CRIU images into fresh pid+mount namespaces, checkpoint them from inside",
		Version: fmt.Sprintf("%s\ncommit: %s\nspec: %s", version, gitCommit, specs.Version),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: "/run/criu-ns-runtime", Usage: "directory for the containers' state"},
			&cli.StringFlag{Name: "log", Usage: "append log lines to this file"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
			&cli.StringFlag{Name: "criu", Value: "criu", Usage: "CRIU binary (a name on PATH or a path)"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "manage the cgroups of bundle containers through systemd (needs systemd running)"},
		},
		Before: setupLog,
		Commands: []*cli.Command{
			restoreCommand, checkpointCommand, stateCommand, listCommand, psCommand,
			killCommand, deleteCommand, checkCommand, criuCommand,
			createCommand, startCommand, runCommand, execCommand, pauseCommand, resumeCommand,
			updateCommand, featuresCommand, specCommand, janitorCommand,
			migrateCommand, receiveCommand, receiveJanitorCommand,
		},
		HideHelpCommand: true,
		CommandNotFound: func(c *cli.Context, cmd string) {
			fail(fmt.Errorf("unknown command %q (see %s --help)", cmd, name))
			os.Exit(1)
		},
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
	}
	for _, c := range app.Commands {
		c.OnUsageError = usageError
	}
	return app
}

// usageError reports a bad flag as one error line, not a page of help.
func usageError(_ *cli.Context, err error, _ bool) error { return err }

// run executes the command line and returns the exit code. Errors are one
// line on stderr; with --log, also a log line (managers show the last
// "level":"error" line of the log file).
func run(args []string) int {
	err := newApp().Run(args)
	if err == nil {
		return 0
	}
	var exit exitCode
	if errors.As(err, &exit) {
		return int(exit)
	}
	fail(err)
	return 1
}

// fail reports err on one line of stderr and, with --log, as an error
// line there: managers show the last "level":"error" line of the log.
func fail(err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	logrus.Error(msg)
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, msg)
}

// exitCode ends the program with that status and no message: a
// foreground restore passes on its tree's status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// foreground ends a command that may have waited for a process: an error
// wins; a detached command succeeds; otherwise the process's code is ours.
func foreground(code int, err error, detach bool) error {
	if err != nil || detach {
		return err
	}
	return exitCode(code)
}

func setupLog(c *cli.Context) error {
	logrus.SetOutput(discard{})
	if c.Bool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	switch f := c.String("log-format"); f {
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{})
	case "text", "":
	default:
		return fmt.Errorf("unknown log format %q (want text or json)", f)
	}
	if path := c.String("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		logrus.SetOutput(f)
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// runtime opens the --root the command line names.
func runtime(c *cli.Context) (*shim.Runtime, error) {
	rt, err := shim.New(c.String("root"), c.String("criu"))
	if err != nil {
		return nil, err
	}
	rt.Notify = notice
	return rt, nil
}

// notice reports on stderr (and in the log) what a command did beyond
// what it was asked: finishing what a killed command left half-done.
func notice(msg string) {
	logrus.Warn(msg)
	fmt.Fprintf(os.Stderr, "%s: note: %s\n", name, msg)
}

// onContainer is the action of a command whose one argument is a
// container id: f gets the opened runtime and the id.
func onContainer(f func(c *cli.Context, rt *shim.Runtime, id string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		id, err := containerID(c)
		if err != nil {
			return err
		}
		rt, err := runtime(c)
		if err != nil {
			return err
		}
		return f(c, rt, id)
	}
}

// containerID returns the command's single argument, the container id.
func containerID(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "", fmt.Errorf("%s: container id is required", c.Command.Name)
	case 1:
		return c.Args().First(), nil
	}
	return "", fmt.Errorf("%s: flags must come before the container id; unexpected %q", c.Command.Name, c.Args().Get(1))
}

// idAndCRIUArgs splits `ID [-- CRIU-ARGS...]` or `-- CRIU-ARGS... ID`
// (the flag parser has already dropped a "--" that came before the id).
func idAndCRIUArgs(c *cli.Context) (string, []string, error) {
	args := c.Args().Slice()
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%s: container id is required", c.Command.Name)
	}
	if !strings.HasPrefix(args[0], "-") {
		rest := args[1:]
		if len(rest) > 0 {
			if rest[0] != "--" {
				return "", nil, fmt.Errorf("%s: flags must come before the container id; unexpected %q", c.Command.Name, rest[0])
			}
			rest = rest[1:]
		}
		return args[0], rest, nil
	}
	return args[len(args)-1], args[:len(args)-1], nil
}

func criunsEnv() criuns.Env {
	root := os.Getenv("CRIU_NS_RUNTIME_ROOT")
	if root == "" {
		root = "/run/criu-ns-runtime"
	}
	return criuns.Env{Root: root}
}

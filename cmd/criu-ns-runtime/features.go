package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups/systemd"
	"github.com/opencontainers/runc/libcontainer/apparmor"
	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/opencontainers/selinux/go-selinux"
	"github.com/urfave/cli/v2"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "print what this runtime supports on this host, as runtime-spec features JSON",
	Action: func(c *cli.Context) error {
		t, f := true, false
		apparmorOn, selinuxOn := apparmor.IsEnabled(), selinux.GetEnabled()
		systemdOn := systemd.IsRunningSystemd()
		feat := features.Features{
			OCIVersionMin: "1.0.0",
			OCIVersionMax: specs.Version,
			Hooks:         configs.KnownHookNames(),
			MountOptions:  specconv.KnownMountOptions(),
			Annotations: map[string]string{
				"io.criu-ns-runtime.version":            version,
				"io.criu-ns-runtime.commit":             gitCommit,
				"io.criu-ns-runtime.checkpoint.enabled": "true",
			},
			Linux: &features.Linux{
				Namespaces:   specconv.KnownNamespaces(),
				Capabilities: capabilities.KnownCapabilities(),
				// --systemd-cgroup goes to libcontainer, which needs a
				// running systemd; rootless systemd is not offered.
				Cgroup:   &features.Cgroup{V1: &t, V2: &t, Systemd: &systemdOn, SystemdUser: &f},
				Apparmor: &features.Apparmor{Enabled: &apparmorOn},
				Selinux:  &features.Selinux{Enabled: &selinuxOn},
			},
		}
		if seccomp.Enabled {
			feat.Linux.Seccomp = &features.Seccomp{
				Enabled: &t, Actions: seccomp.KnownActions(), Operators: seccomp.KnownOperators(),
				Archs: seccomp.KnownArchs(), KnownFlags: seccomp.KnownFlags(), SupportedFlags: seccomp.SupportedFlags(),
			}
		} else {
			feat.Linux.Seccomp = &features.Seccomp{Enabled: &f}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "    ")
		return enc.Encode(feat)
	},
}

var specCommand = &cli.Command{
	Name:  "spec",
	Usage: "write a default config.json for a new bundle, as `runc spec` does",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "where to write config.json (default: the current directory)"},
	},
	Action: func(c *cli.Context) error {
		path := filepath.Join(c.String("bundle"), "config.json")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("spec: %s exists; remove it first", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spec: %w", err)
		}
		b, err := json.MarshalIndent(specconv.Example(), "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(b, '\n'), 0o666)
	},
}

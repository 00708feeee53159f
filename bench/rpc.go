package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	criu "github.com/checkpoint-restore/go-criu/v8"
	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

// rpcRestorePairs: the CLI restore (`criu-ns-runtime restore -d`) against
// the same restore asked by an RPC client (go-criu, in this process) of
// criu-ns swrk mode, timed from the call until go-criu returned (it has
// then reaped `criu-ns swrk`). An informational second row compares with
// the CLI of criu-ns mode, which also re-executes itself into a mount
// namespace of its own, as swrk mode does for a restore.
func (b *bench) rpcRestorePairs(img *images) error {
	op := &Op{Name: "rpc restore", Workload: img.Name, Target: target("rpc restore", img.Name),
		FloorCmd:   "criu-ns-runtime restore -d --image-path IMG ID",
		RuntimeCmd: "go-criu Restore (images_dir_fd, notify) with criu-ns as the CRIU binary"}
	alt := &Op{Name: "rpc restore vs criu-ns CLI", Workload: img.Name,
		FloorCmd: "criu-ns restore -d -D IMG", RuntimeCmd: op.RuntimeCmd,
		Note: "informational: the CLI of the same front end"}
	link := filepath.Join(b.dir, "criu-ns")
	if err := os.Symlink(b.c.runtime, link); err != nil && !os.IsExist(err) {
		return err
	}
	os.Setenv("CRIU_NS_RUNTIME_ROOT", b.root)
	var altF []time.Duration
	err := b.pairs(op, func(measured bool) (time.Duration, time.Duration, error) {
		id := b.id("cli")
		f := b.rt("restore", "-d", "--image-path", img.Dir, id)
		if f.Err != nil {
			return 0, 0, f.Err
		}
		if err := b.verify(id, img, false); err != nil {
			return 0, 0, err
		}
		b.deleteAll([]string{id})
		r, err := b.rpcRestore(link, img, measured && len(op.Floor) == 0)
		if err != nil {
			return 0, 0, err
		}
		a := b.rt("criu", "restore", "-d", "-D", img.Dir)
		if a.Err != nil {
			return 0, 0, a.Err
		}
		b.deleteAll(strings.Fields(b.rt("list", "-q").Out))
		if measured {
			altF = append(altF, a.D)
		}
		return f.D, r, nil
	})
	if err != nil {
		return err
	}
	for i, a := range altF {
		alt.add(a, time.Duration(op.Runtime[i]*float64(time.Millisecond)))
	}
	b.logf("%-26s %-7s floor %8.1f ms  runtime %8.1f ms  ratio %.3f", alt.Name, alt.Workload, alt.FloorMed, alt.RuntimeMed, alt.RatioMed)
	b.res.Ops = append(b.res.Ops, op, alt)
	return nil
}

// rootNote keeps the restored root's pid from go-criu's post-restore
// notification (go-criu's Restore returns no pid).
type rootNote struct {
	criu.NoNotify
	pid int32
}

func (n *rootNote) PostRestore(pid int32) error { n.pid = pid; return nil }

// rpcRestore restores img through criu-ns swrk mode (service), then
// checks the tree (its memory too, if full) and deletes its container.
func (b *bench) rpcRestore(service string, img *images, full bool) (time.Duration, error) {
	dir, err := os.Open(img.Dir)
	if err != nil {
		return 0, err
	}
	defer dir.Close()
	fd, level, log := int32(dir.Fd()), int32(4), "restore.log"
	c := criu.MakeCriu()
	c.SetCriuPath(service)
	n := &rootNote{}
	t := time.Now()
	err = c.Restore(&rpc.CriuOpts{ImagesDirFd: &fd, LogLevel: &level, LogFile: &log}, n)
	d := time.Since(t)
	if err != nil {
		return 0, fmt.Errorf("rpc restore: %w", err)
	}
	if full {
		err = checkMemory(img, int(n.pid))
	} else {
		err = checkAlive(int(n.pid))
	}
	b.deleteAll(strings.Fields(b.rt("list", "-q").Out))
	return d, err
}

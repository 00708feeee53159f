package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const rssTargetKiB = 30 << 10

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// write puts bench.md, ratios.png and raw.json into the output dir.
func (b *bench) write() error {
	r := &b.res
	raw, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(b.c.out, "raw.json"), raw, 0o644); err != nil {
		return err
	}
	md := b.markdown()
	if err := os.WriteFile(filepath.Join(b.c.out, "bench.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := writeChart(filepath.Join(b.c.out, "ratios.png"), b.bars()); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Fprintf(os.Stderr, "bench: results in %s\n", b.c.out)
	return nil
}

func (b *bench) markdown() string {
	r := &b.res
	var s strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&s, f, a...) }
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	w("# criu-ns-runtime benchmark\n\n")
	w("%s on %s (kernel %s, %d pairs after %d warm-up; load average %s at start, %s at end; took %s)",
		r.Date, r.Host, strings.TrimSpace(string(kernel)), r.Pairs, r.Warmup, r.LoadAvg[0], last(r.LoadAvg), r.Elapsed)
	if r.Smoke {
		w(" — **smoke run**: numbers mean nothing")
	}
	if r.KdatCache != "" {
		w("\n\nCRIU's kdat cache (/run/criu.kdat): %s.", r.KdatCache)
	}
	if r.Memory != "" {
		w("\n\nMemory: %s (see bench/README.md, Live migration).", r.Memory)
	}
	w("\n\n")
	if len(r.Ops) > 0 || r.Lazy != nil { // not under -only
		w("Each row runs the floor (bare CRIU in the same kind of namespaces) and the runtime alternately; ")
		w("times are medians in ms, the ratio is the median of the per-pair runtime/floor ratios. Not a test: targets are only reported.\n\n")
		w("| operation | workload | floor (ms) | runtime (ms) | ratio | target | met |\n|---|---|---:|---:|---:|---:|---|\n")
	}
	for _, o := range r.Ops {
		tgt, met := "-", "-"
		if o.Target > 0 {
			tgt, met = fmt.Sprintf("≤%.2f×", o.Target), mark(o.RatioMed <= o.Target)
		}
		w("| %s | %s | %.1f | %.1f | %.3f× | %s | %s |\n", o.Name, o.Workload, o.FloorMed, o.RuntimeMed, o.RatioMed, tgt, met)
	}
	if o := r.Lazy; o != nil {
		tgt, met := "-", "-"
		if o.Target > 0 {
			tgt, met = fmt.Sprintf("≤%.2f×", o.Target), mark(o.RatioMed <= o.Target)
		}
		w("| lazy restore (vs full restore) | %s | %.1f | %.1f | %.3f× | %s | %s |\n", o.Workload, o.FloorMed, o.RuntimeMed, o.RatioMed, tgt, met)
	}
	if len(r.Ops) > 0 || r.Lazy != nil {
		w("\n")
	}
	if o := r.Lazy; o != nil && o.Failures > 0 {
		w("**%d of %d lazy restores failed**; the first: `%s`\n\n", o.Failures, o.Failures+len(o.Runtime), o.FirstError)
	}
	if o := r.Lazy; o != nil && len(o.Extra) > 0 {
		w("Lazy restore: the tree ran after %.1f ms (median); its memory check passed %.1f ms after the restore started (median, all %d passed).\n\n",
			o.RuntimeMed, median(o.Extra), len(o.Extra))
	}
	for _, p := range r.Profiles {
		w("## Where the time goes: %s, %d traced runs\n\n", p.Op, p.Runs)
		w("From the runtime's phase marks (internal/phasetrace, `CRIU_NS_RUNTIME_TRACE`), one clock for the benchmark, the runtime and its init; medians.\n\n")
		w("| phase | ms |\n|---|---:|\n")
		for _, ph := range p.Phases {
			w("| %s | %.1f |\n", ph.What, ph.Med)
		}
		w("| total (median of the runs' sums) | %.1f |\n\n", p.Total)
	}
	for _, sc := range r.Scale {
		w("## %d restores at once (%s tree, %d rounds)\n\n", sc.N, sc.Workload, len(sc.FloorTotal))
		w("| | floor | runtime | ratio |\n|---|---:|---:|---:|\n")
		w("| total (ms, median of rounds) | %.1f | %.1f | %.3f× |\n", sc.FloorTotalMed, sc.RtTotalMed, sc.TotalRatioMed)
		w("| per restore (ms, median) | %.1f | %.1f | %.3f× |\n\n", sc.FloorEachMed, sc.RtEachMed, sc.EachRatio)
	}
	if len(r.Peers) > 0 || len(r.PeerNotes) > 0 {
		w("## Against peers (same run, alternately)\n\n")
		w("The same job done by the tool a user would otherwise run; the ratio is the median of the per-pair ours/peer ratios (below 1: we are faster). ")
		w("The podman and CRI rows run the same manager twice, with runc and with criu-ns-runtime as its runtime, so both times include the manager's own work.\n\n")
		w("| operation | workload | peer | peer (ms) | criu-ns-runtime (ms) | ratio |\n|---|---|---|---:|---:|---:|\n")
		for _, o := range r.Peers {
			w("| %s | %s | %s | %.1f | %.1f | %.3f× |\n", o.Name, o.Workload, peerName(o), o.FloorMed, o.RuntimeMed, o.RatioMed)
		}
		for _, n := range r.PeerNotes {
			w("\n**%s**\n", n)
		}
		w("\n")
	}
	if len(r.Queries) > 0 {
		w("## Queries with %d running containers in --root\n\n", r.Queries[0].Containers)
		w("| command | median (ms) | p90 (ms) | max (ms) | target | met |\n|---|---:|---:|---:|---:|---|\n")
		for _, q := range r.Queries {
			tgt, met := "-", "-"
			if q.Target > 0 {
				tgt, met = fmt.Sprintf("≤%.0f ms", q.Target), mark(q.Median <= q.Target)
			}
			w("| `%s` | %.1f | %.1f | %.1f | %s | %s |\n", q.Cmd, q.Median, q.P90, q.Max, tgt, met)
		}
		w("\n")
	}
	if len(r.Migrations) > 0 {
		w("## Live migration over a veth pair (%s tree)\n\n", r.Migrations[0].Workload)
		w("Two hosts: network namespaces of this machine, joined by a veth pair. Medians in ms; the ratio is the median of the per-run total/floor ratios. ")
		w("Floor: bare `criu dump` in the container's namespaces, a copy of the images over the same veth, bare `criu restore` under a pid 1 that stays; ")
		w("the tree is frozen or gone for all of it, so its downtime is its total. Downtime: from just before CRIU's last freeze of the tree until the destination said it runs (migrate --stats).\n\n")
		w("| mode | floor total | total | ratio | target | met | downtime | target | met |\n|---|---:|---:|---:|---:|---|---:|---:|---|\n")
		for _, m := range r.Migrations {
			if m.Skipped != "" {
				w("| %s | - | - | - | - | - | - | - | not run: %s |\n", m.Mode, m.Skipped)
				continue
			}
			tt, tm, dt, dm := "-", "-", "-", "-"
			if m.TotalTarget > 0 {
				tt, tm = fmt.Sprintf("≤%.2f×", m.TotalTarget), mark(m.TotalRatioMed <= m.TotalTarget)
			}
			if m.DowntimeTargetMs > 0 {
				dt, dm = fmt.Sprintf("≤%.1f ms", m.DowntimeTargetMs), mark(m.DowntimeMed <= m.DowntimeTargetMs)
			}
			w("| %s | %.1f | %.1f | %.3f× | %s | %s | %.1f | %s | %s |\n", m.Mode, m.FloorTotalMed, m.TotalMed, m.TotalRatioMed, tt, tm, m.DowntimeMed, dt, dm)
		}
		for _, m := range r.Migrations {
			if m.RestoreMed > 0 {
				w("\n%s: the destination's restore alone took %.1f ms (floor: %.1f ms). The runtime keeps the source's tree, stopped, until the destination's copy runs, so that restore needs memory the machine has not just freed (see Memory above).", m.Mode, m.RestoreMed, m.FloorRestoreMed)
			}
		}
		for _, m := range r.Migrations {
			if m.DowntimeTargetNote != "" && m.Skipped == "" {
				w("\n%s downtime target: %s.", m.Mode, m.DowntimeTargetNote)
			}
			if m.Note != "" && m.Skipped == "" {
				w(" %s %s.", m.Mode, m.Note)
			}
		}
		w("\n\n")
	}
	w("## Peak RSS of the runtime's command process\n\n")
	w("ru_maxrss from wait4 of the criu-ns-runtime process: the maximum over the process and the children it reaped ")
	w("(for checkpoint that includes `criu dump`, which the runtime starts and waits for; ")
	w("restore does not reap the container init or CRIU). Target ≤30 MiB.\n\n")
	w("| command | peak RSS (MiB) | met |\n|---|---:|---|\n")
	keys := make([]string, 0, len(r.RSS))
	for k := range r.RSS {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w("| `%s` | %.1f | %s |\n", k, float64(r.RSS[k])/1024, mark(r.RSS[k] <= rssTargetKiB))
	}
	w("\n## Commands\n\n")
	seen := map[string]bool{}
	for _, o := range append(append(append([]*Op{}, r.Ops...), r.Lazy), r.Peers...) {
		if o == nil || seen[o.Name] {
			continue
		}
		seen[o.Name] = true
		w("- **%s** floor: `%s`; runtime: `%s`", o.Name, o.FloorCmd, o.RuntimeCmd)
		if o.Note != "" {
			w(" (%s)", o.Note)
		}
		w("\n")
	}
	w("- workloads: small = `sh -c 'while :; do sleep 1; done'`; 256MiB/1GiB = tests/workload (Go, static) touching that much memory with a pattern, with one child; ")
	w("started in their own session with only stdio (/dev/null) open and dumped once by bare `criu dump`.\n")
	w("- restore floor note: with `unshare -pmf`, CRIU is pid 1 of the new pid namespace; when it exits after `-d` the kernel kills the restored tree ")
	w("and unshare returns only after that teardown, so the floor includes it (the runtime's teardown happens in the untimed `delete --force`). ")
	w("The `restore vs init-floor` row times bare CRIU under a pid 1 that stays instead.\n")
	w("\n![ratios](ratios.png)\n")
	return s.String()
}

// peerName is the tool a peer row compares with.
func peerName(o *Op) string {
	switch {
	case strings.HasPrefix(o.Name, "bundle"):
		return "runc 1.1.5"
	case strings.HasPrefix(o.Name, "podman"):
		return "runc 1.1.5 under podman"
	case strings.HasPrefix(o.Name, "CRI"):
		return "runc 1.1.5 under containerd's CRI"
	}
	return "Python criu-ns"
}

func last(v []string) string {
	if len(v) == 0 {
		return "?"
	}
	return v[len(v)-1]
}

// bars are the chart's bars: the ratio of every operation and size.
func (b *bench) bars() []bar {
	var bs []bar
	for _, o := range b.res.Ops {
		name := strings.ToUpper(o.Name)
		if o.Name == "restore vs init-floor" {
			name = "RESTORE*"
		}
		bs = append(bs, bar{label: name, sub: strings.ToUpper(o.Workload), v: o.RatioMed, target: o.Target})
	}
	if o := b.res.Lazy; o != nil {
		bs = append(bs, bar{label: "LAZY", sub: strings.ToUpper(o.Workload), v: o.RatioMed, target: o.Target})
	}
	for _, sc := range b.res.Scale {
		bs = append(bs, bar{label: fmt.Sprintf("%dX TOTAL", sc.N), sub: "SMALL", v: sc.TotalRatioMed})
	}
	for _, o := range b.res.Peers {
		// Two short lines: the slots are narrow.
		l := map[string][2]string{"criu-ns restore -d --pidfile": {"VS PY", "RESTORE"}, "criu-ns dump": {"VS PY", "DUMP"},
			"bundle checkpoint": {"VS RUNC", "CKPT"}, "bundle restore -d": {"VS RUNC", "RESTORE"},
			"podman container checkpoint": {"PODMAN", "CKPT"}, "podman container restore": {"PODMAN", "RESTORE"},
			"CRI checkpoint": {"CRI", "CKPT"}, "CRI restore": {"CRI", "RESTORE"}}[o.Name]
		bs = append(bs, bar{label: l[0], sub: l[1], v: o.RatioMed})
	}
	return bs
}

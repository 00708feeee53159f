package shim

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update applies the OCI resources read from r (`update --resources`) to
// the container's cgroup: memory, cpu, pids and blkio weight.
func (rt *Runtime) Update(id string, r io.Reader) error {
	var res specs.LinuxResources
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return fmt.Errorf("update: resources are not valid JSON: %w", err)
	}
	return rt.withLibcontainer(id, func(c *container) error {
		cfg := c.ct.Config()
		applyResources(cfg.Cgroups.Resources, &res)
		return c.ct.Set(cfg)
	})
}

func applyResources(c *cgroups.Resources, r *specs.LinuxResources) {
	if m := r.Memory; m != nil {
		setIf(&c.Memory, m.Limit)
		setIf(&c.MemoryReservation, m.Reservation)
		setIf(&c.MemorySwap, m.Swap)
		if m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
			c.MemorySwap = -1 // unlimited memory means unlimited swap too
		}
	}
	if cpu := r.CPU; cpu != nil {
		setIf(&c.CpuShares, cpu.Shares)
		setIf(&c.CpuQuota, cpu.Quota)
		setIf(&c.CpuPeriod, cpu.Period)
		if cpu.Cpus != "" {
			c.CpusetCpus = cpu.Cpus
		}
		if cpu.Mems != "" {
			c.CpusetMems = cpu.Mems
		}
		if cpu.Shares != nil {
			c.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*cpu.Shares)
		}
	}
	if p := r.Pids; p != nil {
		c.PidsLimit = p.Limit
	}
	if b := r.BlockIO; b != nil {
		setIf(&c.BlkioWeight, b.Weight)
	}
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

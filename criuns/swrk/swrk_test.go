package swrk

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

func TestForceTreeOptions(t *testing.T) {
	o := &rpc.CriuOpts{RstSibling: ptr(false)}
	forceTreeOptions(o)
	if !o.GetRstSibling() || o.GetManageCgroupsMode() != rpc.CriuCgMode_IGNORE {
		t.Errorf("a plain restore: rst_sibling %v, cgroup mode %s; want true, IGNORE", o.GetRstSibling(), o.GetManageCgroupsMode())
	}
	// A client's own cgroup choice stands, as `criu-ns restore --manage-cgroups=...` does.
	o = &rpc.CriuOpts{ManageCgroupsMode: rpc.CriuCgMode_SOFT.Enum()}
	forceTreeOptions(o)
	if o.GetManageCgroupsMode() != rpc.CriuCgMode_SOFT {
		t.Errorf("the client's cgroup mode became %s", o.GetManageCgroupsMode())
	}
	o = &rpc.CriuOpts{ManageCgroups: ptr(true)}
	forceTreeOptions(o)
	if o.ManageCgroupsMode != nil {
		t.Errorf("manage_cgroups was set, yet a mode was forced: %s", o.GetManageCgroupsMode())
	}
}

func TestTreeEnds(t *testing.T) {
	dump := func(o *rpc.CriuOpts) *rpc.CriuReq { return &rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: o} }
	ok := &rpc.CriuResp{Type: rpc.CriuReqType_DUMP.Enum(), Success: ptr(true)}
	failed := &rpc.CriuResp{Type: rpc.CriuReqType_DUMP.Enum(), Success: ptr(false)}
	for _, c := range []struct {
		name string
		req  *rpc.CriuReq
		resp *rpc.CriuResp
		want bool
	}{
		{"dump", dump(&rpc.CriuOpts{}), ok, true},
		{"failed dump", dump(&rpc.CriuOpts{}), failed, false},
		{"leave running", dump(&rpc.CriuOpts{LeaveRunning: ptr(true)}), ok, false},
		{"leave stopped", dump(&rpc.CriuOpts{LeaveStopped: ptr(true)}), ok, false},
		{"pre-dump", &rpc.CriuReq{Type: rpc.CriuReqType_PRE_DUMP.Enum(), Opts: &rpc.CriuOpts{}},
			&rpc.CriuResp{Type: rpc.CriuReqType_PRE_DUMP.Enum(), Success: ptr(true)}, false},
	} {
		if got := treeEnds(c.req, c.resp); got != c.want {
			t.Errorf("%s: treeEnds = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSocketArg(t *testing.T) {
	if fd, err := socketArg([]string{"7"}); err != nil || fd != 7 {
		t.Errorf("socketArg(7) = %d, %v", fd, err)
	}
	for _, bad := range [][]string{nil, {"x"}, {"-1"}, {"3", "4"}} {
		if _, err := socketArg(bad); err == nil {
			t.Errorf("socketArg(%q) accepted", bad)
		}
	}
}

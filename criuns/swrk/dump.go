package swrk

import (
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v8/rpc"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criurpc"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// dumpTree serves a dump (or CRIU's pre-dump loop) of a pid in tree
// container id with a CRIU inside its namespaces, while the container is
// locked; a dump that ends the tree ends the container as a checkpoint
// does.
func (s *session) dumpTree(req *rpc.CriuReq, id string) {
	answered := false
	rt, err := s.runtime()
	if err == nil {
		err = rt.DumpRPC(id, func(init *pidfd.Proc) (bool, error) {
			b, stop, err := s.relayIn(init)
			if err != nil {
				return false, err
			}
			defer stop()
			ended := false
			for {
				packet, files, err := s.treeRequest(b, req, id)
				if err != nil {
					return ended, err
				}
				final, err := s.converse(b, packet, files)
				if err != nil {
					answered = answered || err == errNoAnswer // nothing to say, as CRIU
					return ended, err
				}
				s.answer(final)
				answered = true
				ended = ended || treeEnds(req, final)
				if !criurpc.Continues(req, final) {
					return ended, nil
				}
				// CRIU's pre-dump loop: the next request is for the same CRIU.
				raw, _, err := s.client.Recv()
				if err != nil {
					return ended, nil // the client left; CRIU learns it from stop
				}
				answered = false
				if req, err = criurpc.DecodeReq(raw); err != nil {
					// CRIU refuses it as it refuses any garbage.
					if final, err := s.converse(b, raw, nil); err == nil {
						s.answer(final)
					}
					answered = true
					return ended, nil
				}
			}
		})
	}
	if err != nil && !answered {
		s.answer(criurpc.ErrorResp(req.GetType(), err))
	}
}

// treeRequest is req as the CRIU in container id must get it: the pid as
// the container sees it.
func (s *session) treeRequest(b *backend, req *rpc.CriuReq, id string) ([]byte, []*os.File, error) {
	if opts := req.GetOpts(); opts != nil && opts.GetPid() > 0 {
		in, nsPid, err := s.rt.FindTree(int(opts.GetPid()))
		if err != nil {
			return nil, nil, err
		}
		if in != id {
			return nil, nil, fmt.Errorf("pid %d is not in the tree container %s this connection dumps", opts.GetPid(), id)
		}
		opts.Pid = ptr(int32(nsPid))
	}
	packet, err := req.MarshalVT()
	if err != nil {
		return nil, nil, err
	}
	return s.forBackend(b, packet)
}

// treeEnds says whether CRIU's final answer to req means the tree is
// gone: a dump that succeeded without leaving the tree running or stopped.
func treeEnds(req *rpc.CriuReq, final *rpc.CriuResp) bool {
	o := req.GetOpts()
	return req.GetType() == rpc.CriuReqType_DUMP && final.GetType() == rpc.CriuReqType_DUMP &&
		final.GetSuccess() && !o.GetLeaveRunning() && !o.GetLeaveStopped()
}

package nsinit

import (
	"errors"
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v8/rpc"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criurpc"
)

// RPCFd is, in RPC mode, the init's end of the channel to the runtime's
// RPC proxy (criuns/swrk), where the directories would otherwise be.
const RPCFd = DirFds

// restoreRPC is restore for an RPC client: the init is the relay between
// the proxy and `criu swrk` (package criurpc), so CRIU, in the container's
// namespaces, finds the client's descriptors in the init. It returns the
// restored root's pid from CRIU's answer.
func restoreRPC(cfg *Config) (root, lazy int, err error) {
	// CRIU gets exactly what the relay hands it: not the report pipe,
	// not the container's directory.
	criurpc.CloseOnExecAll()
	resp, err := criurpc.Serve(os.NewFile(RPCFd, "rpc"), criurpc.RelayOptions{
		CRIU:  cfg.CRIU,
		Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
		BeforeCRIU: func(req *rpc.CriuReq) error {
			if t := req.GetType(); t != rpc.CriuReqType_RESTORE {
				return fmt.Errorf("a tree container's init serves RESTORE, not %s", t)
			}
			return reservePids(int(req.GetOpts().GetImagesDirFd()))
		},
	})
	switch {
	case err != nil:
		return 0, 0, err
	case resp == nil:
		return 0, 0, errors.New("criu swrk ended without answering the restore")
	case !resp.GetSuccess():
		if msg := resp.GetCrErrmsg(); msg != "" {
			return 0, 0, fmt.Errorf("criu restore failed: %s", msg)
		}
		return 0, 0, errors.New("criu restore failed")
	case resp.GetType() != rpc.CriuReqType_RESTORE || resp.GetRestore().GetPid() <= 0:
		return 0, 0, fmt.Errorf("criu swrk answered the restore with %s and no pid", resp.GetType())
	}
	return int(resp.GetRestore().GetPid()), 0, nil
}

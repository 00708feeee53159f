package swrk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v8/rpc"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criurpc"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/imagecheck"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// restore restores into a new tree container whose init runs CRIU's side
// of the conversation, and answers with the root's pid as the client sees
// it. On failure the container is gone and the client gets CRIU's answer
// (or ours, when CRIU never answered).
func (s *session) restore(req *rpc.CriuReq) {
	fail := func(err error) { s.answer(criurpc.ErrorResp(rpc.CriuReqType_RESTORE, err)) }
	if req.Opts == nil {
		fail(errors.New("RESTORE without opts"))
		return
	}
	if req.Opts.GetImagesDirFd() == -1 && req.Opts.GetImagesDir() == "" {
		fail(errors.New("neither images_dir_fd nor images_dir was passed by the RPC client"))
		return
	}
	forceTreeOptions(req.Opts)
	files, err := s.peerFiles(req, true) // images first, see criurpc.PeerFds
	if err != nil {
		fail(err)
		return
	}
	packet, err := req.MarshalVT()
	if err != nil {
		closeFiles(files)
		fail(err)
		return
	}
	// For the record (state's image-path annotation): the images' path.
	imagePath, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", files[0].Fd()))
	// CRIU does not protect itself from bad images (a truncated pages file
	// makes it loop forever): check them first, as every restore does. A
	// dir with no images at all gets CRIU's own (quick) answer.
	checked := imagePath
	if _, err := os.Stat(checked); err != nil {
		checked = fmt.Sprintf("/proc/self/fd/%d", files[0].Fd())
	}
	if _, err := os.Stat(filepath.Join(checked, "inventory.img")); err == nil {
		if err := imagecheck.Check(checked); err != nil {
			closeFiles(files)
			fail(err)
			return
		}
	}
	rt, err := s.runtime()
	if err != nil {
		closeFiles(files)
		fail(err)
		return
	}
	mine, initEnd, err := criurpc.SocketPair()
	if err != nil {
		closeFiles(files)
		fail(err)
		return
	}
	ch, err := criurpc.OpenChannel(mine, s.inherited)
	if err != nil {
		initEnd.Close()
		closeFiles(files)
		fail(err)
		return
	}
	defer ch.Close()

	type conversation struct {
		final *rpc.CriuResp
		err   error
	}
	var relayed chan conversation
	restored, err := rt.Restore(shim.RestoreOptions{
		Kind: bundle.KindTree, ID: s.env.NewID(), ImagePath: imagePath, Detach: true,
		Ephemeral: true, Stdio: req.Opts.GetShellJob(),
		RPC: &shim.RPCRestore{Channel: initEnd, Started: func(initPid int) {
			// The init holds its end now: it alone keeps the channel up.
			initEnd.Close()
			b := &backend{ch: ch, inContainer: true, toCaller: func(nsPid int32) (int32, error) {
				pid, err := shim.InitChild(initPid, int(nsPid))
				return int32(pid), err
			}}
			relayed = make(chan conversation, 1)
			go func() {
				final, err := s.converse(b, packet, files)
				if err != nil {
					// CRIU must not wait for a client that is gone: it
					// fails, and so does the restore, which undoes itself.
					ch.Shutdown()
				}
				relayed <- conversation{final, err}
			}()
		}},
	})
	if relayed == nil { // the init never ran
		initEnd.Close()
		closeFiles(files)
		fail(err)
		return
	}
	if err != nil {
		ch.Shutdown() // if the init died mid-way, stop waiting for it
	}
	c := <-relayed
	switch {
	case err == nil && c.final.GetRestore() != nil:
		c.final.Restore.Pid = ptr(int32(restored.RootPid))
		s.answer(c.final)
	case c.final != nil && !c.final.GetSuccess():
		s.answer(c.final) // CRIU's own verdict
	case c.err != nil && c.err != errNoAnswer:
		fail(c.err)
	case err != nil:
		fail(err)
	default:
		fail(errors.New("criu swrk answered the restore without a pid"))
	}
}

// forceTreeOptions makes a restore request what `criu-ns restore` runs:
// the root must be the init's child (rst_sibling; a client that asked
// for it, to reap the root itself, cannot: the init reaps it), and the
// tree stays in the container's cgroup unless the client chose a cgroup
// mode.
func forceTreeOptions(o *rpc.CriuOpts) {
	o.RstSibling = ptr(true)
	if o.ManageCgroups == nil && o.ManageCgroupsMode == nil {
		o.ManageCgroupsMode = rpc.CriuCgMode_IGNORE.Enum()
	}
}

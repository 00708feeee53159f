package criurpc

import (
	"errors"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
	"golang.org/x/sys/unix"
)

// DecodeReq parses a request packet.
func DecodeReq(b []byte) (*rpc.CriuReq, error) {
	req := &rpc.CriuReq{}
	if err := req.UnmarshalVT(b); err != nil {
		return nil, err
	}
	if req.Type == nil {
		return nil, errors.New("request has no type")
	}
	return req, nil
}

// DecodeResp parses a response packet.
func DecodeResp(b []byte) (*rpc.CriuResp, error) {
	resp := &rpc.CriuResp{}
	if err := resp.UnmarshalVT(b); err != nil {
		return nil, err
	}
	return resp, nil
}

// ErrorResp is a failed answer to a request of type t in CRIU's form, for
// errors found before any CRIU ran: cr_errno is err's errno, if it has one.
func ErrorResp(t rpc.CriuReqType, err error) *rpc.CriuResp {
	resp := &rpc.CriuResp{Type: t.Enum(), Success: ptr(false), CrErrmsg: ptr(err.Error())}
	var errno unix.Errno
	if errors.As(err, &errno) {
		resp.CrErrno = ptr(int32(errno))
	}
	return resp
}

// IsNotify says whether resp is a notification, which CRIU sends in the
// middle of a request and for which it waits for the client's answer.
func IsNotify(resp *rpc.CriuResp) bool { return resp.GetType() == rpc.CriuReqType_NOTIFY }

// Continues says whether a CRIU that answered req with resp still reads
// requests on the same socket, as cr-service.c decides: a successful
// pre-dump waits for the next pre-dump or the dump; keep_open works for
// the request types that allow it (and CRIU goes on whatever the answer).
// After anything else, CRIU exits.
func Continues(req *rpc.CriuReq, resp *rpc.CriuResp) bool {
	if req.GetType() == rpc.CriuReqType_PRE_DUMP {
		return resp.GetType() == rpc.CriuReqType_PRE_DUMP && resp.GetSuccess()
	}
	return req.GetKeepOpen() && KeepOpenAllowed(req.GetType())
}

// KeepOpenAllowed is CRIU's list of request types that may keep the
// connection open (chk_keepopen_req); CRIU drops the connection without
// an answer when another type asks for it.
func KeepOpenAllowed(t rpc.CriuReqType) bool {
	switch t {
	case rpc.CriuReqType_PAGE_SERVER, rpc.CriuReqType_PAGE_SERVER_CHLD,
		rpc.CriuReqType_CPUINFO_DUMP, rpc.CriuReqType_CPUINFO_CHECK,
		rpc.CriuReqType_FEATURE_CHECK, rpc.CriuReqType_VERSION:
		return true
	}
	return false
}

// PeerFd is a field of a request that names a descriptor of CRIU's
// socket peer, which CRIU reaches through /proc/<peer>/fd/N or
// pidfd_getfd(2).
type PeerFd struct {
	Name string // as in rpc.proto
	Fd   *int32
}

// PeerFds returns the fields of opts that name a peer's descriptor, in a
// fixed order; unset fields are left out. Both ends of a channel call it
// on the same request to agree on which attached descriptor is which.
func PeerFds(opts *rpc.CriuOpts) []PeerFd {
	if opts == nil {
		return nil
	}
	var fields []PeerFd
	if opts.GetImagesDirFd() != -1 { // -1 (the default) means: use images_dir
		fields = append(fields, PeerFd{"images_dir_fd", opts.ImagesDirFd})
	}
	for _, f := range []PeerFd{
		{"work_dir_fd", opts.WorkDirFd}, {"status_fd", opts.StatusFd}, {"pidfd_store_sk", opts.PidfdStoreSk},
	} {
		if f.Fd != nil {
			fields = append(fields, f)
		}
	}
	return fields
}

func ptr[T any](v T) *T { return &v }

"""A pycriu client for the integration tests (tests/rpcclients_test.go).

    pycriu_client.py SERVICE restore DIR      restore DIR's images, print the root's pid
    pycriu_client.py SERVICE dump PID DIR     dump the tree of PID into DIR, leave it running

SERVICE is the binary pycriu runs as `SERVICE swrk FD` (use_binary). It
needs pycriu (CRIU's lib/pycriu, with rpc_pb2 generated) on PYTHONPATH.
"""
import os
import sys

import pycriu


def main(argv):
    service, command, args = argv[1], argv[2], argv[3:]
    c = pycriu.criu()
    c.use_binary(service)
    c.opts.log_level = 4
    if command == "restore":
        (images,) = args
        c.opts.images_dir_fd = os.open(images, os.O_DIRECTORY)
        c.opts.log_file = "restore.log"
        print(c.restore().pid)
    elif command == "dump":
        pid, images = args
        c.opts.images_dir_fd = os.open(images, os.O_DIRECTORY)
        c.opts.log_file = "dump.log"
        c.opts.pid = int(pid)
        c.opts.leave_running = True
        c.dump()
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except pycriu.CRIUException as e:
        sys.exit("pycriu: %s" % e)

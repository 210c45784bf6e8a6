"""Stand-in for the Python interpreter that kfp.local starts for every task.

Run as `python -I -S forkserver_client.py REAL_PYTHON SOCKET ARGS...` (standard library only,
so it starts in milliseconds). A task command (`-m kfp.dsl.executor_main ...`) is handed with
this process's stdin, stdout and stderr, environment and working directory to the fork server
listening on SOCKET, which runs it in a fork of a process that has already imported the heavy
libraries; the task's exit code becomes this process's. Any other command, or a fork server
that cannot be reached, runs on REAL_PYTHON unchanged.
"""

import json
import os
import socket
import struct
import sys

TASK_MODULE = ["-m", "kfp.dsl.executor_main"]
HEADER = struct.Struct("!Q")  # length of the JSON request that follows
STATUS = struct.Struct("!i")  # the task's exit code, sent back when it ends


def _run_on_server(address: str, args: list[str]) -> int | None:
    """The task's exit code, or None if the server could not take the task."""
    request = json.dumps({"args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(address)
        socket.send_fds(connection, [HEADER.pack(len(request))], [0, 1, 2])
        connection.sendall(request)
    except OSError:
        return None
    reply = b""
    while len(reply) < STATUS.size:
        chunk = connection.recv(STATUS.size - len(reply))
        if not chunk:
            sys.stderr.write("kubecycle: the fork server stopped while running this task\n")
            return 1
        reply += chunk
    return STATUS.unpack(reply)[0]


def main() -> None:
    """Hand a task command to the fork server, or run the command on the real interpreter."""
    real_python, address, *args = sys.argv[1:]
    if args[:2] == TASK_MODULE:
        code = _run_on_server(address, args[2:])
        if code is not None:
            sys.exit(code)
    os.execv(real_python, [real_python, *args])


if __name__ == "__main__":
    main()

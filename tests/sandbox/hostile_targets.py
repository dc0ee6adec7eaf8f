"""Hostile sandbox targets: each tries one way out of the sandbox and reports what it got.

They run as ``function(payload, emit)`` inside ``run_sandboxed``; this module is imported
(trusted) before the guard is installed, like a real worker's, and the hostile part runs
afterwards, as design code would.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
import time


class _Hook(str):
    """A str subclass whose methods run code when anything (the guard) handles it."""

    ran: list[str] = []

    def __getitem__(self, key):
        _Hook.ran.append("getitem")
        return str.__getitem__(self, key)

    def __eq__(self, other):
        _Hook.ran.append("eq")
        return str.__eq__(self, other)

    __hash__ = str.__hash__

    def startswith(self, *args):
        _Hook.ran.append("startswith")
        return str.startswith(self, *args)

    def __fspath__(self):
        _Hook.ran.append("fspath")
        return str(self)


def _try_read(path: str) -> str:
    try:
        with open(path) as f:
            return "read:" + f.read(200)
    except Exception as exc:  # noqa: BLE001 - the outcome is the report
        return f"{type(exc).__name__}"


def guard_reentry(payload: dict, emit) -> dict:
    """Hand the guard a str subclass, then try a plain read the guard must still see."""
    first = _try_read(_Hook(payload["path"]))
    second = _try_read(payload["path"])
    return {"ran": list(_Hook.ran), "first": first, "second": second}


def guard_race(payload: dict, emit) -> dict:
    """One thread keeps the hook busy with allowed events while another reads a file the
    guard forbids (a shared re-entry flag would let some of those reads through)."""
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            os.listdir(".")

    workers = [threading.Thread(target=busy) for _ in range(2)]
    for worker in workers:
        worker.start()
    got = [_try_read(payload["path"]) for _ in range(payload.get("tries", 300))]
    stop.set()
    for worker in workers:
        worker.join()
    return {"read": sum(g.startswith("read:") for g in got), "tries": len(got)}


def unix_connect(payload: dict, emit) -> str:
    """Connect to a pathname unix socket of the host."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(payload["path"])
            sock.sendall(b"from the sandbox")
            return "connected"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"


def plant_links(payload: dict, emit) -> list[str]:
    """Leave links in a writable dir that point at host files (for the next trusted step)."""
    made = []
    for name, target in payload["links"].items():
        os.symlink(target, os.path.join(payload["dir"], name))
        made.append(name)
    return made


def fill_disk(payload: dict, emit) -> dict:
    """Write far more than the scratch quota into the scratch dir."""
    chunk = b"\1" * (1 << 20)
    written = 0
    try:
        with open("fill.bin", "wb") as f:
            for _ in range(payload["mb"]):
                f.write(chunk)
                f.flush()
                written += 1
    except OSError as exc:
        return {"written_mb": written, "errno": exc.errno}
    return {"written_mb": written, "errno": None}


def flood_stdout(payload: dict, emit) -> str:
    line = b"x" * 65535 + b"\n"
    for _ in range(payload["mb"] * 16):
        os.write(1, line)
    return "flooded"


def flood_line(payload: dict, emit) -> str:
    emit({"big": "y" * (payload["mb"] << 20)})
    return "sent"


def flood_violations(payload: dict, emit) -> str:
    for _ in range(payload["n"]):
        _try_read("/etc/passwd")
    return "done"


def leave_process(payload: dict, emit) -> int:
    """Start a detached grandchild (``sleep TAG``) that would outlive the run."""
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", payload["tag"]])
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def raw_syscalls(payload: dict, emit) -> dict:
    """Call what seccomp forbids straight through libc (no audit events): exec, unshare,
    a netlink socket, ptrace."""
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}

    def outcome(rc: int) -> str:
        return "allowed" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")

    argv = (ctypes.c_char_p * 2)(b"/bin/true", None)
    out["execve"] = outcome(libc.execve(b"/bin/true", argv, None))
    out["unshare"] = outcome(libc.unshare(0x10000000))  # CLONE_NEWUSER
    out["netlink"] = outcome(libc.socket(16, 3, 0))  # AF_NETLINK, SOCK_RAW
    out["ptrace"] = outcome(libc.ptrace(16, os.getppid(), None, None))  # PTRACE_ATTACH
    out["unix"] = outcome(libc.socket(1, 1, 0))
    return out


def hold(payload: dict, emit) -> int:
    time.sleep(payload["s"])
    return os.getuid()


def become_sleep(payload: dict, emit) -> None:
    """Replace the worker by ``sleep TAG`` (to be found on the host afterwards)."""
    os.execv("/bin/sleep", ["sleep", payload["tag"]])


def read_then_write(payload: dict, emit) -> str:
    with open(payload["read"]) as f:
        text = f.read()
    with open(payload["write"], "w") as f:
        f.write("written")
    return text

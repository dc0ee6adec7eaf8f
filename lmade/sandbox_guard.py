"""The in-process layer of the sandbox: a ``sys.addaudithook`` policy for untrusted code.

Installed in the sandbox worker after its trusted imports and before any design code
runs. It blocks process creation, networking, ctypes and introspection of live objects,
reads outside the allowed roots and writes outside the writable roots, and reports every
violation (even one the design catches and swallows) through ``report``. It is a second
layer with clear messages; the OS layer (namespaces, uid drop, rlimits) is the wall.

This module must stay importable without torch (the sandbox supervisor imports it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

_PROCESS_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.killpg", "subprocess.Popen", "pty.spawn", "os.startfile", "webbrowser.open",
})
_NETWORK_PREFIXES = ("socket.", "urllib.", "http.client.", "ftplib.", "smtplib.",
                     "imaplib.", "poplib.", "nntplib.", "telnetlib.")
_INTROSPECTION_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
# event -> positions of path arguments that are written (created, changed or removed)
_WRITE_PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
    "os.link": (1,), "os.symlink": (1,), "os.truncate": (0,), "os.chmod": (0,),
    "os.chown": (0,), "os.utime": (0,), "os.mkfifo": (0,), "os.mknod": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "os.chflags": (0,), "os.lchflags": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copymode": (1,),
    "shutil.copystat": (1,), "shutil.chown": (0,), "shutil.move": (0, 1),
    "shutil.copytree": (1,), "shutil.make_archive": (0,), "shutil.unpack_archive": (1,),
}
_READ_PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.listdir": (0,), "os.scandir": (0,), "glob.glob": (0,), "shutil.copyfile": (0,),
    "shutil.copytree": (0,), "shutil.unpack_archive": (0,), "sqlite3.connect": (0,),
    "os.link": (0,),
}
# Always readable: what the interpreter and torch read about their own process and host.
_SYSTEM_READ_ROOTS = ("/proc/self", "/proc/thread-self", "/proc/cpuinfo", "/proc/meminfo",
                      "/proc/stat", "/sys/devices/system", "/sys/fs/cgroup", "/dev/null",
                      "/dev/urandom", "/dev/random", "/dev/zero")
_SYSTEM_WRITE_ROOTS = ("/dev/null",)


class SandboxViolation(PermissionError):
    """Untrusted code attempted an operation the sandbox forbids."""


def _normalise(roots: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({os.path.realpath(r) for r in roots if r}))


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _as_path(arg: object) -> str | None:
    """A path argument as an absolute, symlink-free string; None for file descriptors."""
    if arg is None or isinstance(arg, int):
        return None
    try:
        raw = os.fsdecode(os.fspath(arg))
    except TypeError:
        return None
    return os.path.realpath(raw)


def install(
    read_roots: Iterable[str],
    write_roots: Iterable[str],
    report: Callable[[str, str], None],
    allow_subprocess: bool = False,
    allow_network: bool = False,
    allow_ctypes: bool = False,
) -> None:
    """Install the audit hook. ``report(operation, detail)`` is called on each violation
    before SandboxViolation is raised into the offending code."""
    writable = _normalise([*write_roots, *_SYSTEM_WRITE_ROOTS])
    readable = _normalise([*read_roots, *_SYSTEM_READ_ROOTS, f"/proc/{os.getpid()}"]) + writable
    own_pid = os.getpid()
    busy = [False]  # re-entrancy guard: the checks below must not audit themselves

    def deny(operation: str, detail: str) -> None:
        report(operation, detail)
        raise SandboxViolation(f"sandbox: blocked operation {operation} ({detail})")

    def check_paths(event: str, args: tuple, positions: tuple[int, ...], roots: tuple[str, ...],
                    verb: str) -> None:
        for i in positions:
            path = _as_path(args[i]) if i < len(args) else None
            if path is not None and not _under(path, roots):
                deny(event, f"{verb} {path} is outside the sandbox")

    def hook(event: str, args: tuple) -> None:
        if busy[0]:
            return
        busy[0] = True
        try:
            if event == "open":
                mode, flags = (args[1] or ""), (args[2] or 0)
                writing = any(c in mode for c in "wax+") or bool(flags & _WRITE_FLAGS)
                roots, verb = (writable, "writing") if writing else (readable, "reading")
                check_paths("open", args, (0,), roots, verb)
            elif event in _WRITE_PATH_EVENTS:
                check_paths(event, args, _WRITE_PATH_EVENTS[event], writable, "writing")
                if event in _READ_PATH_EVENTS:
                    check_paths(event, args, _READ_PATH_EVENTS[event], readable, "reading")
            elif event in _READ_PATH_EVENTS:
                check_paths(event, args, _READ_PATH_EVENTS[event], readable, "reading")
            elif event in _PROCESS_EVENTS and not allow_subprocess:
                deny(event, "starting processes or shell commands is not allowed")
            elif event == "os.kill" and args and args[0] != own_pid:
                deny(event, f"signalling process {args[0]} is not allowed")
            elif event.startswith(_NETWORK_PREFIXES) and not allow_network:
                deny(event, f"network access is not allowed: {_short(args)}")
            elif event.startswith("ctypes.") and not allow_ctypes:
                deny(event, "ctypes (raw memory and foreign calls) is not allowed")
            elif event in _INTROSPECTION_EVENTS:
                deny(event, "walking live objects is not allowed")
        finally:
            busy[0] = False

    sys.addaudithook(hook)


def _short(args: tuple) -> str:
    text = repr(args)
    return text if len(text) <= 120 else text[:117] + "..."


_OUT_OF_MEMORY_MARKERS = ("can't allocate memory", "not enough memory", "bad_alloc",
                          "out of memory", "Cannot allocate memory")


def failure_reason(exc: BaseException) -> str:
    """Classify an exception raised by sandboxed code: blocked, memory_limit or exception."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SandboxViolation):
            return "blocked"
        if isinstance(exc, MemoryError) or any(m in str(exc) for m in _OUT_OF_MEMORY_MARKERS):
            return "memory_limit"
        exc = exc.__cause__ or exc.__context__
    return "exception"

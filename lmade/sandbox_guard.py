"""The in-process layer of the sandbox: a ``sys.addaudithook`` policy for untrusted code.

Installed in the sandbox worker after its trusted imports and before any design code
runs. It blocks process creation, networking, ctypes and introspection of live objects,
reads outside the allowed roots and writes outside the writable roots, and reports every
violation (even one the design catches and swallows) through ``report``. It gives early,
readable messages only; the wall is the OS layer (the allowlist jail, seccomp, cgroups,
uid drop, rlimits), which also holds for native code and processes the hook cannot see.

The hook never runs code of the objects it is handed: it reads only arguments of the exact
built-in types (``str``, ``bytes``, ``int``, ``pathlib`` paths), treats any other object
(a ``str`` subclass with its own ``__fspath__`` or ``__eq__``...) as a violation, and
describes arguments by their type's name. Its re-entry flag is per thread.

This module must stay importable without torch (the sandbox supervisor imports it).
"""

from __future__ import annotations

import _thread
import os
import pathlib
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


_PATH_TYPES = (pathlib.PosixPath, pathlib.PurePosixPath)
_TYPE_NAME = type.__dict__["__name__"]


class _Untrusted(Exception):
    """An audit argument of a type the hook does not read (it could run code)."""


def _type_name(arg: object) -> str:
    return _TYPE_NAME.__get__(type(arg))  # not type(arg).__name__: a metaclass could hook it


def _as_path(arg: object) -> str | None:
    """A path argument as an absolute, symlink-free string; None for file descriptors.
    Only exact built-in types are read: anything else raises _Untrusted."""
    kind = type(arg)
    if arg is None or kind is int:
        return None
    if kind is str:
        raw = arg
    elif kind is bytes:
        raw = os.fsdecode(arg)
    elif kind in _PATH_TYPES:
        raw = os.fspath(arg)
    else:
        raise _Untrusted(f"a path argument of type {_type_name(arg)}")
    return os.path.realpath(raw)


def _exact(arg: object, kind: type, default: object) -> object:
    """``arg`` when it is exactly ``kind`` (or None -> default), else _Untrusted."""
    if arg is None:
        return default
    if type(arg) is not kind:
        raise _Untrusted(f"an argument of type {_type_name(arg)}")
    return arg


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
    state = _thread._local()  # per-thread re-entry flag: the checks must not audit themselves

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
        if getattr(state, "busy", False):
            return
        state.busy = True
        try:
            check(event, args)
        except _Untrusted as exc:
            deny(event, f"{exc} is not allowed here")
        finally:
            state.busy = False

    def check(event: str, args: tuple) -> None:
        if event == "open":
            mode = _exact(args[1] if len(args) > 1 else None, str, "")
            flags = _exact(args[2] if len(args) > 2 else None, int, 0)
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
        elif event == "os.kill" and args and _exact(args[0], int, None) != own_pid:
            deny(event, f"signalling process {args[0]} is not allowed")
        elif event.startswith(_NETWORK_PREFIXES) and not allow_network:
            deny(event, f"network access is not allowed: {_short(args)}")
        elif event.startswith("ctypes.") and not allow_ctypes:
            deny(event, "ctypes (raw memory and foreign calls) is not allowed")
        elif event in _INTROSPECTION_EVENTS:
            deny(event, "walking live objects is not allowed")

    sys.addaudithook(hook)


def _short(args: tuple) -> str:
    """The arguments as text, without calling any method of theirs."""
    parts = [repr(a) if type(a) in (str, bytes, int, float, bool, type(None)) else
             f"<{_type_name(a)}>" for a in args]
    text = f"({', '.join(parts)})"
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

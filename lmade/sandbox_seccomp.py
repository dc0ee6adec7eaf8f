"""The sandbox's system-call filter (seccomp), loaded in the worker before design code runs.

A deny list on top of the jail: calls that no model needs and that would let code leave or
widen the jail fail with EPERM (clone3 with ENOSYS, so the C library falls back to clone,
whose namespace flags can be checked):
- always: ptrace and cross-process memory access, every mount call, pivot_root, chroot,
  unshare, setns, clone with namespace flags, bpf, keyctl/add_key/request_key,
  perf_event_open, io_uring, module loading, kexec, open_by_handle_at, userfaultfd, clock
  and host settings;
- unless ``allow_exec``: execve and execveat (``Limits.allow_subprocess``, e.g. torchrun
  ranks or torch.compile's compiler);
- sockets: ``"unix"`` allows AF_UNIX only (Python's multiprocessing uses it), ``"local"``
  also AF_INET/AF_INET6 (the sandbox's own loopback, for DDP) and AF_NETLINK (gloo lists
  the interfaces of the sandbox's network namespace), ``"any"`` filters nothing.

The filter is inherited by every process the worker starts, across exec. It uses
libseccomp's Python binding: Debian's ``python3-seccomp`` (a C extension built for the
system python3; loaded from its dist-packages file when this interpreter has the same
version) or PyPI's ``pyseccomp`` (ctypes over ``libseccomp.so.2``, installed with the
``agent`` extra). ``backend()`` says which one this interpreter gets.

Standard library only: the sandbox child imports it as a script before genesys exists.
"""

from __future__ import annotations

import errno
import glob
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

_DEBIAN_DIST = "/usr/lib/python3/dist-packages"
_ALWAYS_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsmount", "fsconfig", "fspick", "mount_setattr", "unshare", "setns", "bpf", "keyctl",
    "add_key", "request_key", "perf_event_open", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "open_by_handle_at", "name_to_handle_at", "userfaultfd", "swapon",
    "swapoff", "reboot", "syslog", "acct", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "iopl", "ioperm", "quotactl", "lookup_dcookie", "fanotify_init", "vhangup",
    "uselib", "personality",
)
_EXEC_CALLS = ("execve", "execveat")
# CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
# CLONE_NEWNET, CLONE_NEWTIME
_CLONE_NAMESPACE_FLAGS = (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000,
                          0x40000000, 0x80)
_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK, _AF_MAX = 1, 2, 10, 16, 46
SOCKET_POLICIES = {"unix": (_AF_UNIX,), "local": (_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK),
                   "any": None}


def _debian_binding() -> ModuleType | None:
    """python3-seccomp's extension, if it was built for this interpreter's version."""
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    for path in sorted(glob.glob(f"{_DEBIAN_DIST}/seccomp.{tag}-*.so")):
        loader = importlib.machinery.ExtensionFileLoader("seccomp", path)
        spec = importlib.util.spec_from_file_location("seccomp", path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        try:
            loader.exec_module(module)
        except ImportError:
            continue
        return module
    return None


def _load() -> tuple[ModuleType | None, str]:
    for name in ("seccomp", "pyseccomp"):
        try:
            return importlib.import_module(name), name
        except (ImportError, OSError):  # pyseccomp raises OSError without libseccomp.so.2
            continue
    module = _debian_binding()
    return (module, "python3-seccomp") if module is not None else (None, "")


_BINDING: tuple[ModuleType | None, str] | None = None


def _binding() -> tuple[ModuleType | None, str]:
    global _BINDING
    if _BINDING is None:
        _BINDING = _load()
    return _BINDING


def backend() -> str:
    """The libseccomp binding in use ("" when none is importable)."""
    return _binding()[1]


def install(allow_exec: bool = False, sockets: str = "unix") -> None:
    """Load the filter into this process (and all it starts later). Raises RuntimeError
    when no binding is available, so the caller can say the layer is missing."""
    seccomp, _ = _binding()
    if seccomp is None:
        raise RuntimeError("no libseccomp binding (python3-seccomp or pyseccomp)")
    if sockets not in SOCKET_POLICIES:
        raise ValueError(f"sockets must be one of {sorted(SOCKET_POLICIES)}, got {sockets!r}")
    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for call in _ALWAYS_DENIED + (() if allow_exec else _EXEC_CALLS):
        try:
            rules.add_rule(denied, call)
        except (RuntimeError, ValueError, OSError):
            continue  # a call this kernel/architecture does not have
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in _CLONE_NAMESPACE_FLAGS:
        rules.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    families = SOCKET_POLICIES[sockets]
    if families is not None:
        for family in range(_AF_MAX + 1):
            if family not in families:
                rules.add_rule(denied, "socket", seccomp.Arg(0, seccomp.EQ, family))
                rules.add_rule(denied, "socketpair", seccomp.Arg(0, seccomp.EQ, family))
        rules.add_rule(denied, "socket", seccomp.Arg(0, seccomp.GT, _AF_MAX))
    rules.load()

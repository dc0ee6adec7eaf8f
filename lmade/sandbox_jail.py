"""Stage one of the sandbox child: build a fresh root from an allowlist, then drop privileges.

Runs as root inside the child's fresh namespaces (real root, or root of a new user
namespace), before any untrusted code exists, and changes mounts only in the child's own
mount namespace (it refuses to run in the parent's). The child's root becomes a new tmpfs
(``pivot_root``) holding only what ``layout()`` lists, each at its host path:
- read-only: the system's shared libraries and tools (``/usr``; ``/bin``, ``/lib``... as
  the host's links or binds), the interpreter, the installed packages, the project's code
  and the dirs the caller marks readable (training shards);
- read-write: the scratch dir (a tmpfs of ``scratch_mb`` for a throw-away scratch, the
  host dir for a kept one) and the dirs the caller marks writable;
- the sandbox's own /proc (its PID namespace), a /dev with only null, zero, full, random,
  urandom (and the GPU nodes when CUDA is passed) and a size-limited /dev/shm;
- an /etc with only the loader's cache and generated passwd/group/hosts/nsswitch files
  (no host users, no host names).
No host /tmp, /home, /run, /var, /etc or sockets: a path that was not listed does not exist.
Directories above a listed path are the new root's own (mode 0755), so a path below a folder
other users cannot enter (e.g. a data dir in a 0700 ``mktemp -d`` or the interpreter under
/root) is still reachable by the sandbox uid. Every mount except the writable ones, /proc
and /dev/shm is then read-only. Before mounting, stage one puts itself into the run's
cgroup (``sandbox_cgroup``); finally it execs ``setpriv`` to drop every capability and, for
a root parent, to become the run's own uid, and starts stage two.

Torch-free and standard-library only: it runs as a script before the package is importable;
the parent imports it too, for ``layout()``.
"""

from __future__ import annotations

import ctypes
import fcntl
import glob
import os
import re
import socket
import struct
import sys

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND = 0x20, 0x400, 0x800, 0x1000
_MS_REC, _MS_PRIVATE, _MS_RELATIME = 0x4000, 0x40000, 0x200000
_ST_RELATIME = 0x1000
_KEPT_FLAGS = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC | _MS_NOATIME | _MS_NODIRATIME
_MNT_DETACH = 0x2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}
_OLD = "/.oldroot"
_SYSTEM_RO = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri")
_ETC_COPIED = ("/etc/ld.so.cache",)
_SANDBOX_USER = "sandbox"


def layout(read_roots: list[str], writable: list[str], scratch: str, scratch_mb: int | None,
           kept_scratch: bool, uid: int | None, cuda: bool,
           hidden: tuple[str, ...] = ()) -> dict:
    """What the fresh root holds (computed in the parent; ``enter`` builds it)."""
    links, ro = {}, []
    for path in _SYSTEM_RO:
        if os.path.islink(path):
            links[path] = os.readlink(path)
        elif os.path.isdir(path):
            ro.append(path)
    ro.append("/sys/devices/system/cpu")
    if cuda:  # the driver reads /sys; its libraries may sit outside /usr
        ro += ["/sys", *os.environ.get("LD_LIBRARY_PATH", "").split(":"),
               os.environ.get("CUDA_HOME", "")]
    # Writable dirs as given, links not resolved: an earlier run may have planted one in a
    # dir it could write, and enter() refuses to mount through links.
    rw = [os.path.normpath(os.path.abspath(p)) for p in writable] + \
        ([scratch] if kept_scratch else [])
    ro += [os.path.realpath(p) for p in read_roots]
    ro = [p for p in dict.fromkeys(ro) if p and os.path.isabs(p) and os.path.exists(p)
          and not _under(p, [scratch])]
    devices = list(_DEVICES)
    if cuda:
        devices += [p for pattern in _GPU_DEVICES for p in sorted(glob.glob(pattern))]
    name_uid = 0 if uid is None else uid
    host = socket.gethostname()
    return {
        "ro": _outermost(ro), "rw": sorted(set(rw)), "links": links,
        "tmpfs": {} if kept_scratch else {scratch: scratch_mb},
        "hide": [h for h in map(os.path.realpath, hidden)
                 if h not in ro + rw and _under(h, ro + rw)],
        "devices": devices, "shm_mb": scratch_mb, "scratch": scratch, "uid": uid,
        "copy": [p for p in _ETC_COPIED if os.path.isfile(p)],
        "etc": {
            "passwd": f"{_SANDBOX_USER}:x:{name_uid}:{name_uid}::{scratch}:/nonexistent\n",
            "group": f"{_SANDBOX_USER}:x:{name_uid}:\n",
            # the host name too: uname shows it anyway, and torchrun's rendezvous resolves it
            "hosts": f"127.0.0.1 localhost {host}\n::1 localhost {host}\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
        },
    }


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _outermost(paths: list[str]) -> list[str]:
    """Drop paths that lie inside another listed path (the outer bind shows them)."""
    return sorted(p for p in paths if not _under(p, [q for q in paths if q != p]))


def _c(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


class _Mounts:
    """mount(2), umount2(2) and pivot_root(2) through libc, collecting what failed."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)  # libc, already loaded
        self.errors: list[str] = []

    def _check(self, rc: int, what: str) -> bool:
        if rc != 0:
            self.errors.append(f"{what}: {os.strerror(ctypes.get_errno())}")
        return rc == 0

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> bool:
        rc = self.libc.mount(_c(source), _c(target), _c(fstype), ctypes.c_ulong(flags),
                             _c(data))
        return self._check(rc, f"mount {source or fstype} on {target}")

    def bind(self, source: str, target: str, recursive: bool = True) -> bool:
        return self.mount(source, target, None, _MS_BIND | (_MS_REC if recursive else 0))

    def read_only(self, target: str) -> bool:
        """Remount a bind read-only, keeping its flags (a user namespace may not clear
        nosuid, nodev, noexec or the atime flags of a mount it did not make)."""
        try:
            st = os.statvfs(target).f_flag
        except OSError as exc:
            self.errors.append(f"statvfs {target}: {exc}")
            return False
        flags = (st & _KEPT_FLAGS) | (_MS_RELATIME if st & _ST_RELATIME else 0)
        return self.mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        number = _SYS_PIVOT_ROOT.get(os.uname().machine)
        if number is None or self.libc.syscall(number, new_root.encode(), put_old.encode()):
            raise SystemExit(f"sandbox jail: pivot_root failed: {os.strerror(ctypes.get_errno())}")

    def detach(self, target: str) -> bool:
        return self._check(self.libc.umount2(target.encode(), _MNT_DETACH), f"umount {target}")


def _mountinfo() -> list[str]:
    """Mount points in mount order."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point))
    return points


def _loopback_up() -> None:
    """Bring up ``lo`` in the child's private network namespace: processes inside the
    sandbox can talk to each other (e.g. DDP), while nothing outside is reachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


def _no_links(path: str) -> bool:
    """Does ``path`` name itself, with no symbolic link in any of its components?"""
    return os.path.realpath(path) == os.path.normpath(path)


def _spot(path: str, like: str) -> None:
    """Create the mount point ``path`` in the new root: a dir, or a file for a file bind."""
    os.makedirs(os.path.dirname(path) or "/", mode=0o755, exist_ok=True)
    if os.path.isdir(like) and not os.path.isdir(path):
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _join_cgroup(files: list[str], errors: list[str]) -> None:
    for path in files:
        try:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
        except OSError as exc:
            errors.append(f"cgroup {path}: {exc}")


def _write(path: str, text: str | bytes, mode: int = 0o644) -> None:
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _build(m: _Mounts, config: dict) -> None:
    """Populate the new root (mounted at /, with the host's root at _OLD)."""
    uid = config.get("uid")
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    targets = [(p, "ro") for p in config["ro"]] + [(p, "rw") for p in config["rw"]] + \
        [(p, "tmpfs") for p in config["tmpfs"]]
    for path, kind in sorted(targets, key=lambda t: t[0].count("/")):
        source = _OLD + path
        if not _no_links(os.path.dirname(path)) or (kind != "tmpfs" and not _no_links(source)):
            # a link planted in a dir the sandbox could write in an earlier run: mount(2)
            # would follow it (a relative one even back into the host's root)
            m.errors.append(f"{path}: a symbolic link on the way; not mounted")
            continue
        if kind == "tmpfs":
            os.makedirs(path, mode=0o755, exist_ok=True)
            size = config["tmpfs"][path]
            m.mount("genesys-scratch", path, "tmpfs", _MS_NOSUID | _MS_NODEV,
                    f"mode=0700{owner}" + (f",size={size}m" if size else ""))
            os.mkdir(os.path.join(path, "tmp"), 0o700)
            if uid is not None:
                os.chown(os.path.join(path, "tmp"), uid, uid)
        elif os.path.exists(source):
            _spot(path, source)
            if _no_links(path):
                m.bind(source, path)
    for path in config.get("hide", []):
        m.mount("genesys-hidden", path, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=16k")
    for path, target in config["links"].items():
        os.symlink(target, path)
    os.makedirs("/proc", exist_ok=True)
    m.bind(_OLD + "/proc", "/proc")  # the PID namespace's own /proc (unshare --mount-proc)
    os.makedirs("/dev", exist_ok=True)
    m.mount("genesys-dev", "/dev", "tmpfs", _MS_NOSUID, "mode=0755,size=64k")
    for device in config["devices"]:
        if os.path.exists(_OLD + device):
            _spot(device, _OLD + device)
            m.bind(_OLD + device, device)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")
    os.makedirs("/dev/shm")
    shm = config.get("shm_mb")
    m.mount("genesys-shm", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV,
            "mode=1777" + (f",size={shm}m" if shm else ""))
    os.makedirs("/etc", exist_ok=True)
    for path in config["copy"]:
        with open(_OLD + path, "rb") as f:
            _write(path, f.read())
    for name, text in config["etc"].items():
        _write(f"/etc/{name}", text)


_ROOT_MOUNT_POINTS = ("/tmp", "/mnt", "/media", "/srv", "/var/tmp", "/opt", "/boot", "/home")


def _root_mount_point(config: dict) -> str:
    """A host dir to mount the new root over: the mount hides what is below it, so none
    of the paths to bind in (a checkout or a venv under /tmp, say) may be there."""
    needed = [*config["ro"], *config["rw"], *config.get("devices", []), *config.get("copy", [])]
    for point in _ROOT_MOUNT_POINTS:
        inside = any(p == point or p.startswith(point + "/") for p in needed)
        if os.path.isdir(point) and not os.path.islink(point) and not inside:
            return point
    raise SystemExit("sandbox jail: no host dir to mount the new root over (every candidate "
                     f"of {', '.join(_ROOT_MOUNT_POINTS)} holds a path the sandbox needs)")


def enter(config: dict) -> list[str]:
    """Build and enter the fresh root; returns what could not be done (empty when all
    held). Raises SystemExit when the jail cannot be built at all."""
    if os.readlink("/proc/self/ns/mnt") == config["parent_mnt_ns"]:
        raise SystemExit("sandbox jail: not in a private mount namespace; refusing to mount")
    m = _Mounts()
    _join_cgroup(config.get("cgroup_procs", []), m.errors)
    if config.get("loopback"):
        try:
            _loopback_up()
        except OSError as exc:
            m.errors.append(f"loopback: {exc}")
    os.umask(0o022)
    if not m.mount(None, "/", None, _MS_REC | _MS_PRIVATE):
        raise SystemExit(f"sandbox jail: {m.errors[-1]}")
    # The new root: a tmpfs mounted over a host dir that holds none of the listed paths
    # (only in this namespace), pivoted to / with the host root below it at _OLD while the
    # listed paths are bound in.
    point = _root_mount_point(config)
    if not m.mount("genesys-root", point, "tmpfs", _MS_NOSUID | _MS_NODEV,
                   "mode=0755,size=16m"):
        raise SystemExit(f"sandbox jail: {m.errors[-1]}")
    os.mkdir(point + _OLD)
    m.pivot_root(point, point + _OLD)
    os.chdir("/")
    _build(m, config)
    if not m.detach(_OLD):
        raise SystemExit(f"sandbox jail: the host root stays visible: {m.errors[-1]}")
    os.rmdir(_OLD)
    writable = set(config["rw"]) | set(config["tmpfs"]) | {"/dev/shm"}
    for point in _mountinfo():
        if point in writable or point == "/proc" or point.startswith("/proc/"):
            continue
        m.read_only(point)
    return m.errors


def exec_stage_two(config: dict, argv: list[str]) -> None:
    """Replace this process by ``argv`` without capabilities (and as the sandbox uid)."""
    drop = [config["setpriv"], "--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all"]
    if config.get("uid") is not None:
        uid = str(config["uid"])
        drop += ["--reuid", uid, "--regid", uid, "--clear-groups"]
    sys.stdout.flush()
    os.execv(drop[0], [*drop, "--", *argv])

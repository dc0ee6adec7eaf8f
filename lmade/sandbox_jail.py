"""Stage one of the sandbox child: lock the file system down, drop privileges, exec stage two.

Runs as root inside the child's fresh namespaces (real root, or root of a new user
namespace), before any untrusted code exists. It changes mounts only in the child's own
mount namespace (and refuses to run in the parent's):
- directories that other users cannot enter (e.g. /root, holding the interpreter) are
  covered by an empty tmpfs, with only the paths the child needs bound back in;
- every mount but the child's /proc is remounted read-only, except the writable dirs
  (the scratch dir and any the caller allows), so even native code cannot write elsewhere;
then it execs ``setpriv`` to drop every capability (and, for a root parent, to become an
unprivileged uid, which also makes RLIMIT_NPROC apply) and start ``sandbox_child.py``.

Torch-free and standard-library only: it runs as a script before the package is importable.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _mounts() -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) of every mount, in mount order."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            mounts.append((point, fields[5].split(",")))
    return mounts


class _Mounter:
    def __init__(self, mount: str):
        self.mount = mount
        self.errors: list[str] = []

    def __call__(self, *args: str) -> bool:
        done = subprocess.run([self.mount, *args], capture_output=True, text=True)
        if done.returncode:
            self.errors.append(f"mount {' '.join(args)}: {done.stderr.strip()}")
        return done.returncode == 0


def _hide(mount: _Mounter, hidden: str, keep: list[str], stage: str) -> None:
    """Cover ``hidden`` with an empty tmpfs, then put the ``keep`` paths back."""
    staged = []
    os.makedirs(stage, exist_ok=True)
    for path in keep:
        spot = tempfile.mkdtemp(dir=stage)
        if mount("--bind", path, spot):
            staged.append((spot, path))
    if mount("-t", "tmpfs", "-o", "mode=755,size=64k", "genesys-hidden", hidden):
        for spot, path in staged:
            os.makedirs(path, exist_ok=True)
            mount("--move", spot, path)
    else:
        for spot, _ in staged:
            subprocess.run(["umount", spot], capture_output=True)


def _loopback_up() -> None:
    """Bring up ``lo`` in the child's private network namespace: processes inside the
    sandbox can talk to each other (e.g. DDP), while nothing outside is reachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


def enter(config: dict) -> list[str]:
    """Apply the file-system jail; returns what could not be done (empty when all held)."""
    if os.readlink("/proc/self/ns/mnt") == config["parent_mnt_ns"]:
        raise SystemExit("sandbox jail: not in a private mount namespace; refusing to mount")
    mount = _Mounter(config["mount"])
    if config.get("loopback"):
        try:
            _loopback_up()
        except OSError as exc:
            mount.errors.append(f"loopback: {exc}")
    writable = config["writable"]
    if config["hide"]:
        # Stage outside every hidden dir: a stage under one (e.g. a scratch dir inside the
        # hidden checkout) would vanish under its tmpfs with the paths staged in it.
        stage = tempfile.mkdtemp(prefix="genesys-jail-", dir=_stage_root(config["hide"]))
        for hidden, keep in config["hide"].items():
            _hide(mount, hidden, keep, stage)
        try:
            for spot in os.listdir(stage):
                os.rmdir(os.path.join(stage, spot))
            os.rmdir(stage)
        except OSError as exc:
            mount.errors.append(f"cleanup: {exc}")
    for path in writable:
        mount("--bind", path, path)
    for point, options in _mounts():
        if point in writable or point == "/proc" or point.startswith("/proc/"):
            continue
        # Keep the mount's own flags (nosuid, nodev...): a user namespace may not clear them.
        kept = [o for o in options if o not in ("rw", "ro")]
        mount("-o", ",".join(["remount", "bind", "ro", *kept]), point)
    return mount.errors


def _stage_root(hidden: dict) -> str:
    """A writable dir not below any hidden dir (the child's TMPDIR may be below one)."""
    for root in ("/tmp", "/dev/shm", "/var/tmp"):
        below = any(root == h or root.startswith(h.rstrip(os.sep) + os.sep) for h in hidden)
        if not below and os.access(root, os.W_OK):
            return root
    raise SystemExit("sandbox jail: no writable staging dir outside the hidden dirs")


def exec_stage_two(config: dict, argv: list[str]) -> None:
    """Replace this process by ``argv`` without capabilities (and as the sandbox uid)."""
    drop = [config["setpriv"], "--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all"]
    if config.get("uid") is not None:
        uid = str(config["uid"])
        drop += ["--reuid", uid, "--regid", uid, "--clear-groups"]
    sys.stdout.flush()
    os.execv(drop[0], [*drop, "--", *argv])

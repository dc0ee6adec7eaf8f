"""Per-sandbox memory and process limits in a cgroup of their own (trusted, parent side).

``Cgroup.create(name, memory_mb, max_procs)`` makes one cgroup per sandboxed run below the
parent's own cgroup and sets its limits:
- cgroup v2 (the unified tree), where the host delegates the ``memory`` and ``pids``
  controllers to the parent's cgroup: ``memory.max`` (+ ``memory.swap.max`` 0) and
  ``pids.max``;
- cgroup v1 otherwise, where the ``memory`` and ``pids`` hierarchies are mounted and
  writable (as root): ``memory.limit_in_bytes`` (+ ``memory.memsw.limit_in_bytes`` where
  swap accounting exists) and ``pids.max``.
The memory limit counts what the processes really use (resident pages, page cache and the
scratch tmpfs they fill), unlike RLIMIT_AS, which counts reserved address space. Without
either, ``create`` returns None and the child keeps its rlimits only.

The sandbox's stage one writes its own pid into ``procs_files()`` before anything else
runs, so every process the sandbox starts is counted. After the run the parent reads
``oom_killed()`` and ``peak_mb()``, and ``close()`` kills whatever is still inside and
removes the cgroup.

Standard library only (the GPU agent loads the sandbox without torch).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_ROOT = Path("/sys/fs/cgroup")
_MB = 1024 * 1024


def _own_paths() -> dict[str, str]:
    """controller ("" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _v2_base(own: dict[str, str]) -> Path | None:
    for mount in (_ROOT, _ROOT / "unified"):
        if (mount / "cgroup.controllers").exists() and "" in own:
            base = mount / own[""].lstrip("/")
            try:
                enabled = (base / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            if {"memory", "pids"} <= set(enabled) and os.access(base, os.W_OK):
                return base
    return None


def _v1_bases(own: dict[str, str]) -> dict[str, Path] | None:
    bases = {}
    for controller in ("memory", "pids"):
        mount = _ROOT / controller
        if controller not in own or not (mount / "cgroup.procs").exists():
            return None
        base = mount / own[controller].lstrip("/")
        if not base.is_dir():  # a container that mounts only its own subtree at the top
            base = mount
        if not os.access(base, os.W_OK):
            return None
        bases[controller] = base
    return bases


def available() -> str:
    """"v2", "v1" or "" : which cgroup limits this process can set for its sandboxes."""
    own = _own_paths()
    if _v2_base(own) is not None:
        return "v2"
    return "v1" if _v1_bases(own) is not None else ""


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Cgroup:
    """One sandbox's cgroup: a dir per hierarchy (one for v2, memory + pids for v1)."""

    version: str
    dirs: tuple[Path, ...]

    @classmethod
    def create(cls, name: str, memory_mb: int | None, max_procs: int | None) -> Cgroup | None:
        own = _own_paths()
        v2 = _v2_base(own)
        if v2 is not None:
            group = cls("v2", (v2 / name,))
        else:
            bases = _v1_bases(own)
            if bases is None:
                return None
            group = cls("v1", (bases["memory"] / name, bases["pids"] / name))
        try:
            for path in group.dirs:
                path.mkdir()
        except OSError:
            group.close()
            return None
        if not group._limit(memory_mb, max_procs):
            group.close()
            return None
        return group

    def _limit(self, memory_mb: int | None, max_procs: int | None) -> bool:
        memory = str(memory_mb * _MB) if memory_mb else None
        procs = str(max_procs) if max_procs else "max"
        if self.version == "v2":
            (group,) = self.dirs
            ok = _write(group / "pids.max", procs)
            if memory:
                ok = ok and _write(group / "memory.max", memory)
                _write(group / "memory.swap.max", "0")
            return ok
        mem, pids = self.dirs
        ok = _write(pids / "pids.max", procs)
        if memory:
            ok = ok and _write(mem / "memory.limit_in_bytes", memory)
            _write(mem / "memory.memsw.limit_in_bytes", memory)  # absent without swap accounting
        return ok

    def procs_files(self) -> list[str]:
        """The files stage one writes its pid into (one per hierarchy)."""
        return [str(path / "cgroup.procs") for path in self.dirs]

    def oom_killed(self) -> bool:
        """Did the memory limit kill a process of this sandbox?"""
        if self.version == "v2":
            events = self.dirs[0] / "memory.events"
        else:
            events = self.dirs[0] / "memory.oom_control"
        try:
            fields = dict(line.split() for line in events.read_text().splitlines())
        except (OSError, ValueError):
            return False
        return int(fields.get("oom_kill", 0)) > 0

    def peak_mb(self) -> float | None:
        name = "memory.peak" if self.version == "v2" else "memory.max_usage_in_bytes"
        value = _read_int(self.dirs[0] / name)
        return None if value is None else value / _MB

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs:
            try:
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                continue
        return found

    def close(self, wait_s: float = 2.0) -> list[int]:
        """Kill every process still inside, then remove the cgroup. Returns the pids that
        were still alive (processes that outlived the run)."""
        leftover = sorted(self.pids())
        deadline = time.monotonic() + wait_s
        while True:
            alive = self.pids()
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for path in self.dirs:
            for _ in range(50):  # rmdir fails while the kernel still tears a process down
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        return leftover

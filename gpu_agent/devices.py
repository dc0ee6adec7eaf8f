"""What this machine offers: CUDA GPUs (via nvidia-smi, so torch stays out of the parent
process), host memory and CPU count."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from genesys.v1 import job_pb2


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # cuda | cpu
    index: int  # GPU index (CUDA_VISIBLE_DEVICES value); -1 for the CPU
    name: str
    memory_bytes: int

    def to_proto(self) -> job_pb2.Device:
        return job_pb2.Device(kind=self.kind, name=self.name, memory_bytes=self.memory_bytes)


def host_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def cuda_devices() -> list[DeviceInfo]:
    """GPUs nvidia-smi lists (empty without a driver)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        index, name, mib = (p.strip() for p in line.split(","))
        gpus.append(DeviceInfo("cuda", int(index), name, int(float(mib)) << 20))
    return gpus


def cpu_device() -> DeviceInfo:
    return DeviceInfo("cpu", -1, f"cpu x{os.cpu_count() or 1}", host_memory_bytes())


def parse_gpu_spec(spec: str) -> list[int] | None:
    """'all' -> None (every GPU), 'none' -> [], '0,1' -> [0, 1]."""
    spec = spec.strip().lower()
    if spec == "all":
        return None
    if spec in ("none", ""):
        return []
    try:
        return [int(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"--gpus must be 'all', 'none' or indices like '0,1', got {spec!r}") from None


def select_devices(spec: str) -> list[DeviceInfo]:
    """The GPUs the agent may use, or the CPU when none is available or wanted."""
    wanted = parse_gpu_spec(spec)
    gpus = [] if wanted == [] else cuda_devices()
    if wanted:
        known = {g.index for g in gpus}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise ValueError(f"--gpus names GPU(s) {missing} that nvidia-smi does not list "
                             f"(found: {sorted(known) or 'none'})")
        gpus = [g for g in gpus if g.index in wanted]
    return gpus or [cpu_device()]

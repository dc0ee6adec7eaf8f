"""The VERIFY job inside the sandboxed child: the verification engine plus the agent's
drain signal (child.watch_stop_file) and multi-GPU rungs.

The sandbox imports this module (trusted code) BEFORE it installs its guard; importing
genesys.lmade.verify_job here does the engine's heavy imports (torch, lm-eval) then too.
Design code runs only afterwards, inside ``run_verify``.

Multi-GPU: ``payload["gpus"] > 1`` starts torchrun over the GPUs the agent gave this job
(CUDA_VISIBLE_DEVICES); every rank runs the engine and rank 0 writes the events and the
result into the scratch dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from genesys.lmade.verify_job import run_verify

from .child import Emit, watch_stop_file


def verify(payload: dict, emit: Emit) -> dict:
    """Train + evaluate one design at one rung (genesys.lmade.verify.run_verify)."""
    watch_stop_file(Path.cwd())
    if int(payload.get("gpus", 1)) > 1:
        return _verify_distributed(payload, emit)
    return run_verify(payload, emit)


def _verify_distributed(payload: dict, emit: Emit) -> dict:
    gpus = int(payload["gpus"])
    scratch = Path.cwd()
    (scratch / "ddp-payload.json").write_text(json.dumps(payload))
    events, result = scratch / "ddp-events.jsonl", scratch / "ddp-result.json"
    events.touch()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={gpus}", "-m", "genesys.gpu_agent.verify_child", str(scratch)]
    proc = subprocess.Popen(cmd, cwd=scratch)
    with open(events) as stream:
        while True:
            line = stream.readline()
            if line:
                emit(json.loads(line))
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.2)
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"torchrun exited with code {proc.returncode}")
    return json.loads(result.read_text())


def _rank_main(scratch: Path) -> None:
    payload = json.loads((scratch / "ddp-payload.json").read_text())
    rank0 = os.environ.get("RANK", "0") == "0"
    with open(scratch / "ddp-events.jsonl", "a") as events:
        def emit(event: dict) -> None:
            if rank0:
                events.write(json.dumps(event) + "\n")
                events.flush()

        value = run_verify(payload, emit)
    if rank0:
        (scratch / "ddp-result.json").write_text(json.dumps(value, default=str))


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))

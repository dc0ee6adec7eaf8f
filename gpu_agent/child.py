"""Sandbox targets of the agent: trusted wrappers that run INSIDE the sandboxed child.

``run_sandboxed("genesys.gpu_agent.child:verify", payload, ...)`` calls ``verify(payload,
emit)`` in the child. The wrappers add what the agent needs around the engines:
- a drain signal: the parent drops a ``STOP`` file into the job's scratch dir (the child's
  cwd); a watcher thread turns it into SIGTERM in the child, on which the trainer saves a
  checkpoint and returns (the job is then handed back and resumed later from it);
- multi-GPU rungs: ``payload["gpus"] > 1`` starts torchrun on the GPUs the agent gave
  this job, and rank 0 writes the result.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

STOP_FILE = "STOP"
Emit = Callable[[dict], None]
VERIFY_TARGET = "genesys.lmade.verify:run_verify"


def _watch_stop_file(folder: Path, poll_s: float = 0.5) -> None:
    def watch() -> None:
        while not (folder / STOP_FILE).exists():
            time.sleep(poll_s)
        signal.raise_signal(signal.SIGTERM)

    threading.Thread(target=watch, name="stop-file", daemon=True).start()


def _resolve(target: str) -> Callable[[dict, Emit], dict]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def verify(payload: dict, emit: Emit) -> dict:
    """A VERIFY job: train + evaluate one design at one rung (see lmade/verify.py)."""
    _watch_stop_file(Path.cwd())
    if int(payload.get("gpus", 1)) > 1:
        return _verify_distributed(payload, emit)
    return _resolve(payload.get("target", VERIFY_TARGET))(payload, emit)


def dry_run(payload: dict, emit: Emit) -> dict:
    """A simulated VERIFY (``genesys agent start --dry-run S``): no training; S seconds of
    steps with progress, a resumable checkpoint and SIGTERM handling like the trainer's, and
    scores derived from the design digest. Exercises a deployment end to end cheaply."""
    steps, seconds = 10, float(payload.get("dry_run_s") or 1.0)
    out = Path(payload.get("out_dir") or ".")
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "dry-run.json"
    step = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
    resumed_from = step
    interrupted = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    while step < steps:
        if interrupted.wait(seconds / steps):
            return {"status": "interrupted", "reason": f"interrupted by SIGTERM at step {step}"}
        step += 1
        checkpoint.write_text(json.dumps({"step": step}))
        emit({"event": "progress", "stage": "train", "step": step, "total_steps": steps,
              "loss": round(8.0 - step * 0.3, 3), "tokens_per_s": 1000.0})
    key = hashlib.sha256(str(payload.get("design_source", "")).encode()).digest()
    scores = {name: round(0.3 + 0.4 * key[i % len(key)] / 255, 4)
              for i, name in enumerate(payload.get("benchmarks") or ["score"])}
    return {"status": "ok", "dry_run": True, "resumed_from_step": resumed_from,
            "train": {"tokens_seen": steps * 1000, "val_loss": round(6.0 + key[-1] / 255, 4)},
            "eval": {"normalised": scores}}


def _verify_distributed(payload: dict, emit: Emit) -> dict:
    """torchrun over the GPUs in CUDA_VISIBLE_DEVICES; events and the result come back
    through files in the scratch dir (rank 0 writes them)."""
    gpus = int(payload["gpus"])
    scratch = Path.cwd()
    (scratch / "ddp-payload.json").write_text(json.dumps(payload))
    events, result = scratch / "ddp-events.jsonl", scratch / "ddp-result.json"
    events.touch()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={gpus}", "-m", "genesys.gpu_agent.child", str(scratch)]
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


def _ddp_rank_main(scratch: Path) -> None:
    payload = json.loads((scratch / "ddp-payload.json").read_text())
    payload["gpus"] = 1  # this process is one rank
    rank0 = os.environ.get("RANK", "0") == "0"
    with open(scratch / "ddp-events.jsonl", "a") as events:
        def emit(event: dict) -> None:
            if rank0:
                events.write(json.dumps(event) + "\n")
                events.flush()

        value = _resolve(payload.get("target", VERIFY_TARGET))(payload, emit)
    if rank0:
        (scratch / "ddp-result.json").write_text(json.dumps(value))


if __name__ == "__main__":
    _ddp_rank_main(Path(sys.argv[1]))

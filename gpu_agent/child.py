"""What the agent runs inside the sandboxed child, light part (no torch): the drain signal
and the simulated VERIFY job.

Drain signal: the parent drops a ``STOP`` file into the job's scratch dir (the child's
cwd); a watcher thread turns it into SIGTERM in the child, on which the trainer saves a
checkpoint and returns (the job is then handed back and resumed later from it).
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

STOP_FILE = "STOP"
Emit = Callable[[dict], None]


def watch_stop_file(folder: Path, poll_s: float = 0.5) -> None:
    def watch() -> None:
        while not (folder / STOP_FILE).exists():
            time.sleep(poll_s)
        signal.raise_signal(signal.SIGTERM)

    threading.Thread(target=watch, name="stop-file", daemon=True).start()


def dry_run(payload: dict, emit: Emit) -> dict:
    """A simulated VERIFY (``genesys agent start --dry-run S``): no training; S seconds of
    steps with progress, a resumable checkpoint and SIGTERM handling like the trainer's, and
    scores derived from the design source, in the engine's result format. Exercises a
    deployment (and the agent's tests) end to end cheaply."""
    steps, seconds = 10, float(payload.get("dry_run_s") or 1.0)
    out = Path(payload.get("out_dir") or ".")
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "dry-run.json"
    step = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
    resumed_from = step
    interrupted = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    watch_stop_file(Path.cwd())
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

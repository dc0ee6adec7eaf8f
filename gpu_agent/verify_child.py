"""The VERIFY job's two processes: the trusted grader and the untrusted worker.

``grade`` runs in the agent's trusted child (no design code ever runs there): it builds the
worker's training-only view of the data, opens the sandboxed worker (``serve``) with the
limits the agent chose, and scores the trained design itself (genesys.lmade.verify.grade).
``serve`` runs in the sandbox: the verification engine's worker plus the agent's drain
signal (child.watch_stop_file) and multi-GPU rungs.

Both modules are imported before design code runs; importing genesys.lmade here does the
engine's heavy imports (torch) then too.

Multi-GPU: ``payload["gpus"] > 1`` trains under torchrun over the GPUs the agent gave this
job (CUDA_VISIBLE_DEVICES), every rank inside the same sandbox; rank 0 writes the events,
the report and the trained weights into the scratch dir, from which ``serve`` scores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from genesys.lmade import load_design
from genesys.lmade.data import PreparedData, training_view
from genesys.lmade.model import GenesysLM
from genesys.lmade.sandbox import Limits
from genesys.lmade.scales import get_scale
from genesys.lmade.verify import grade as grade_design
from genesys.lmade.verify_job import serve as serve_design
from genesys.lmade.verify_job import train_design

from .child import Emit, watch_stop_file

WORKER_TARGET = "genesys.gpu_agent.verify_child:serve"


def grade(payload: dict, emit: Emit) -> dict:
    """Trusted: train the design in a sandboxed worker and score it here."""
    from .job import sandbox_failure_kind  # the agent's rule for whose fault an end was

    limits = Limits.from_json(payload.pop("worker_limits"))
    data = PreparedData(payload["data_dir"])
    view = training_view(data, Path(payload.pop("view_dir")))
    payload["data_dir"] = str(view)
    readable = tuple(d for d in limits.readable_dirs if Path(d) != data.folder)
    limits = replace(limits, readable_dirs=(str(view), *readable))
    try:
        value, box = grade_design(payload, limits, data, target=WORKER_TARGET, on_event=emit)
    finally:
        shutil.rmtree(view, ignore_errors=True)
    sandbox = {"isolation": box.isolation, "cpu_s": box.cpu_s, "peak_rss_mb": box.peak_rss_mb,
               "reason": box.reason}
    if value is None:
        return {"status": "failed", "reason": f"{box.reason}: {box.error}",
                "failure_kind": sandbox_failure_kind(box), "traceback": box.traceback,
                "output_tail": box.output_tail, "sandbox": sandbox}
    return {**value, "sandbox": sandbox, "output_tail": box.output_tail}


def serve(payload: dict, emit: Emit, inbox) -> dict:
    """Untrusted: train (one process or torchrun ranks), then answer score requests."""
    watch_stop_file(Path.cwd())
    train_fn = _train_distributed if int(payload.get("gpus", 1)) > 1 else train_design
    return serve_design(payload, emit, inbox, train_fn)


def _train_distributed(payload: dict, emit: Emit):
    gpus = int(payload["gpus"])
    scratch = Path.cwd()
    (scratch / "ddp-payload.json").write_text(json.dumps(payload))
    events, report = scratch / "ddp-events.jsonl", scratch / "ddp-report.json"
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
    if proc.returncode != 0 or not report.exists():
        raise RuntimeError(f"torchrun exited with code {proc.returncode}")
    result = json.loads(report.read_text())
    weights = scratch / "ddp-model.pt"
    if result.get("status") != "ok" or not weights.exists():
        return result, None
    design = load_design(payload["design_source"], name=payload.get("design_name"))
    context = result["train"]["config"].get("context") or get_scale(payload["scale"]).context
    model = GenesysLM(design, result["model"]["d_model"], result["model"]["n_block"],
                      PreparedData(payload["data_dir"]).vocab_size, int(context))
    model.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return result, model.to("cuda" if torch.cuda.is_available() else "cpu")


def _rank_main(scratch: Path) -> None:
    payload = json.loads((scratch / "ddp-payload.json").read_text())
    rank0 = os.environ.get("RANK", "0") == "0"
    with open(scratch / "ddp-events.jsonl", "a") as events:
        def emit(event: dict) -> None:
            if rank0:
                events.write(json.dumps(event) + "\n")
                events.flush()

        report, model = train_design(payload, emit)
    if rank0:
        if model is not None:
            inner = getattr(model, "module", model)
            torch.save(inner.state_dict(), scratch / "ddp-model.pt")
        (scratch / "ddp-report.json").write_text(json.dumps(report, default=str))


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))

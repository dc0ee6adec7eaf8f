"""The sandboxed half of verification: train + evaluate one design from a JSON payload.

This module is the sandbox target (``genesys.lmade.verify_job:run_verify``); its imports
(torch, lm-eval, ...) happen at module import, before the sandbox guard is installed, so
that libraries probing the host at import time (urllib3 opens a socket) are not blocked.

``run_verify(payload, on_event) -> dict`` (inside the sandbox) is a pure function of its
JSON payload:

    {"design_source": str,            # the design file's text (required)
     "design_name": str | None,
     "scale": "micro",                # a name in genesys.lmade.SCALES
     "tokens": int | None,            # token budget; default the scale's
     "data_dir": str,                 # a prepared dataset (genesys data prepare)
     "out_dir": str | None,           # checkpoints; None = no checkpoints
     "resume": bool, "seed": int,
     "benchmarks": [str] | None,      # default: the offline suite (eval_tasks.OFFLINE_TASKS)
     "train": {TrainConfig field: value},   # optional overrides (context, batch_size, ...)
     "eval": {"n_items": 300, "batch_size": 16, "limit": None}}

and returns

    {"status": "ok" | "aborted" | "interrupted" | "failed", "reason": str | None,
     "design", "digest", "scale", "seed",
     "model": {"d_model", "n_block", "params", "non_embedding_params"},
     "train": TrainResult.to_dict() (config, steps, tokens_seen, train_loss, val_loss,
              loss_curve, val_curve, tokens_per_s, peak_memory_bytes, wall_s, ...),
     "eval": {"tasks": {task: {metric: value}}, "normalised": {task: score}, "wall_s"} | None,
     "fitness": float | None,         # see genesys.lmade.evaluator
     "wall_s": float}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

# lm-eval loads these lazily while building tasks; they probe the host (ctypes) on import
import datasets.arrow_dataset  # noqa: F401
import datasets.packaged_modules.json.json  # noqa: F401
from genesys.lmade import load_design
from genesys.lmade.data import PreparedData
from genesys.lmade.eval_tasks import OFFLINE_TASKS
from genesys.lmade.evaluator import evaluate
from genesys.lmade.monitor import MonitorConfig
from genesys.lmade.trainer import TrainConfig, train

EventCallback = Callable[[dict], None]


def _train_config(payload: dict):
    overrides = dict(payload.get("train") or {})
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown train settings {sorted(unknown)}; known: {sorted(known)}")
    if "betas" in overrides:
        overrides["betas"] = tuple(overrides["betas"])
    if "monitor" in overrides:
        overrides["monitor"] = MonitorConfig(**overrides["monitor"])
    return replace(
        TrainConfig(), tokens=payload.get("tokens"), seed=payload.get("seed", 42), **overrides
    )


def run_verify(payload: dict, on_event: EventCallback | None = None) -> dict:
    """Train and evaluate one design (runs design code: call it inside the sandbox)."""
    started = time.time()
    emit = on_event or (lambda event: None)
    design = load_design(payload["design_source"], name=payload.get("design_name"))
    data = PreparedData(payload["data_dir"])
    config = _train_config(payload)
    result = train(
        design,
        payload["scale"],
        data,
        config,
        out_dir=payload.get("out_dir"),
        resume=bool(payload.get("resume")),
        on_event=emit,
        progress_bar=False,
    )
    out: dict[str, Any] = {
        "status": "ok",
        "reason": result.reason,
        "design": design.name,
        "digest": design.digest,
        "scale": result.scale,
        "seed": config.seed,
        "model": {
            "d_model": result.d_model,
            "n_block": result.n_block,
            "params": result.params,
            "non_embedding_params": result.non_embedding_params,
        },
        "train": result.to_dict(),
        "eval": None,
        "fitness": None,
    }
    if result.aborted:
        out["status"] = "interrupted" if "SIGTERM" in (result.reason or "") else "aborted"
    else:
        emit({"event": "evaluate", "design": design.name, "scale": result.scale})
        opts = dict(payload.get("eval") or {})
        scores = evaluate(
            result.model,
            data.tokenizer,
            data.texts("test"),
            payload.get("benchmarks") or OFFLINE_TASKS,
            seed=config.seed,
            **opts,
        )
        out["eval"] = {
            "tasks": scores.tasks,
            "normalised": scores.normalised,
            "wall_s": scores.wall_s,
        }
        out["fitness"] = scores.fitness
    out["wall_s"] = round(time.time() - started, 3)
    return out

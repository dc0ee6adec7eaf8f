"""The untrusted half of verification: train one design, then score what it is asked.

Sandbox session target (``serve(payload, emit, inbox)``, see ``genesys.lmade.sandbox``);
its imports (torch, lm-eval's datasets, ...) happen at module import, before the sandbox
guard is installed, so that libraries probing the host at import time are not blocked.
The trusted side (``genesys.lmade.verify``) sends:

- ``train`` -> the training report (below); the model stays in this process;
- ``score`` {tokens (B, W) int64, query (B, W, K) int64} -> {logprobs (B, W, K) float32,
  argmax (B, W) int64} (``genesys.lmade.scoring``).

It never sees the validation or test split, the task files or their answers: its data
dir is a training view (``data.training_view``). The payload:

    {"design_source": str,            # the design file's text (required)
     "design_name": str | None,
     "scale": "micro",                # a name in genesys.lmade.SCALES
     "tokens": int | None,            # token budget; default the scale's
     "data_dir": str,                 # a training view of a prepared dataset
     "out_dir": str | None,           # checkpoints; None = no checkpoints
     "resume": bool, "seed": int,
     "train": {TrainConfig field: value}}   # optional overrides (context, batch_size, ...)

The training report (monitoring only: nothing in it is a score):

    {"status": "ok" | "aborted" | "interrupted", "reason": str | None,
     "design", "digest", "scale", "seed",
     "model": {"d_model", "n_block", "params", "non_embedding_params"},
     "train": TrainResult.to_dict() (config, steps, tokens_seen, train_loss, loss_curve,
              val_curve on a monitoring slice of the training split, tokens_per_s, ...)}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import torch
from genesys.lmade import load_design
from genesys.lmade.data import PreparedData
from genesys.lmade.monitor import MonitorConfig
from genesys.lmade.scoring import ModelScorer
from genesys.lmade.trainer import TrainConfig, train
from genesys.lmade.wire import pack, unpack

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


def train_design(payload: dict, on_event: EventCallback | None = None) -> tuple[dict, Any]:
    """Train the design (runs design code: call it inside the sandbox); (report, model)."""
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
    report: dict[str, Any] = {
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
    }
    if result.aborted:
        report["status"] = "interrupted" if "SIGTERM" in (result.reason or "") else "aborted"
    return report, result.model


def serve(payload: dict, emit: EventCallback, inbox, train_fn=train_design) -> dict:
    """Sandbox session target: ``train`` once, then answer ``score`` requests."""
    scorer = None
    served = 0
    for request in inbox:
        served += 1
        if request.op == "train" and scorer is None:
            report, model = train_fn(payload, emit)
            if model is not None:
                scorer = ModelScorer(model)
            request.reply(**report)
        elif request.op == "score" and scorer is not None:
            try:
                tokens = torch.from_numpy(unpack(request.data["tokens"], dtypes=("int64",)).copy())
                query = torch.from_numpy(unpack(request.data["query"], dtypes=("int64",)).copy())
                logprobs, argmax = scorer(tokens, query)
                request.reply(logprobs=pack(logprobs.float()), argmax=pack(argmax.long()))
            except Exception as exc:  # noqa: BLE001 - design code fails in any way
                request.reply(error=f"{type(exc).__name__}: {exc}")
        else:
            request.reply(error=f"unexpected request {request.op!r}")
    return {"served": served}

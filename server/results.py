"""A VERIFY job's JobResult as the RungResult kept with the design.

The agent sends the metrics with their standard errors and the engine's whole report as
metrics_json; the training curves, throughput and peak memory are read from the report's
"train" part (genesys.lmade.trainer.TrainResult), the training seed from the job payload.
Everything taken from the report is checked for type and finiteness: a bad value is left
out, never stored.
"""

from __future__ import annotations

import json
import math

from genesys.v1 import design_pb2, job_pb2

from .errors import InvalidArgument

MAX_CURVE_POINTS = 256  # RungResult.train_curve / val_curve


def check_stderr(result: job_pb2.JobResult | design_pb2.RungResult, field: str = "result") -> None:
    """Every standard error belongs to a metric and is a finite number >= 0."""
    for name, value in result.stderr.items():
        if name not in result.metrics:
            raise InvalidArgument(f"{field}.stderr[{name}]", "has no metric of that name")
        if not math.isfinite(value) or value < 0:
            raise InvalidArgument(f"{field}.stderr[{name}]", f"not a finite number >= 0: {value}")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _curve(points: object) -> list[design_pb2.CurvePoint]:
    """CurvePoints from [{step, loss, tokens}], thinned to MAX_CURVE_POINTS."""
    if not isinstance(points, list):
        return []
    out = []
    for p in points:
        if not isinstance(p, dict):
            continue
        step, loss, tokens = _number(p.get("step")), _number(p.get("loss")), _number(p.get("tokens"))
        if step is not None and loss is not None:
            out.append(design_pb2.CurvePoint(step=int(step), loss=loss, tokens=int(tokens or 0)))
    if len(out) <= MAX_CURVE_POINTS:
        return out
    last = len(out) - 1  # evenly spaced, first and last point kept
    return [out[round(i * last / (MAX_CURVE_POINTS - 1))] for i in range(MAX_CURVE_POINTS)]


def rung_result(job: job_pb2.Job, result: job_pb2.JobResult, worker_id: str
                ) -> design_pb2.RungResult:
    out = design_pb2.RungResult(
        rung=job.rung, metrics=dict(result.metrics), metrics_json=result.metrics_json,
        job_id=job.id, worker_id=worker_id, tokens_trained=result.tokens_trained,
        wall_seconds=result.wall_seconds, stderr=dict(result.stderr), repeats=1)
    try:
        payload = json.loads(job.payload_json or "{}")
        report = json.loads(result.metrics_json or "{}")
    except ValueError:
        payload, report = {}, {}
    seed = _number(payload.get("seed") if isinstance(payload, dict) else None)
    train = report.get("train") if isinstance(report, dict) else None
    if seed is None and isinstance(report, dict):
        seed = _number(report.get("seed"))
    out.training_seed = int(seed or 0)
    if isinstance(train, dict):
        out.train_curve.extend(_curve(train.get("loss_curve")))
        out.val_curve.extend(_curve(train.get("val_curve")))
        out.tokens_per_second = _number(train.get("tokens_per_s")) or 0.0
        out.peak_memory_bytes = int(_number(train.get("peak_memory_bytes")) or 0)
    return out

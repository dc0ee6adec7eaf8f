"""Verification of a design at a scale: check -> train -> evaluate -> one JSON result.

Two entry points:

``verify(design, scale, ...)`` (trusted side: CLI, GPU agent) resolves the design, runs the
checker (genesys.lmade.checker, itself sandboxed), makes sure the data exists, then runs
``run_verify`` in the sandbox child (genesys.lmade.sandbox) because design code is
untrusted, and returns the result dict (also written to ``OUT/result.json``).

``run_verify`` (genesys.lmade.verify_job) documents the payload and the result.

``verify`` adds "check" (the checker's report, or a note when the checker is missing) and
"sandbox" (isolation, cpu_s, peak_rss_mb), and turns a crash of the child into
status "failed" with the error and traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

TARGET = "genesys.lmade.verify_job:run_verify"
EventCallback = Callable[[dict], None]
DEFAULT_WALL_S = 7 * 24 * 3600.0
STOP_GRACE_S = 120.0


def resolve_design(design: str) -> tuple[str, str]:
    """(source, name) of a design file path or a seed name."""
    from genesys.lmade import seeds

    path = Path(design).expanduser()
    if path.is_file():
        return path.read_text(encoding="utf-8"), path.stem
    if design in seeds.names():
        return seeds.source(design), design
    raise FileNotFoundError(
        f"{design!r} is neither a design file nor a seed ({', '.join(seeds.names())})"
    )


def run_check(source: str, name: str, on_event: EventCallback | None) -> dict:
    """The checker's verdict, or a note when the checker is not installed."""
    try:
        from genesys.lmade.checker import check
    except ImportError:
        return {"valid": None, "note": "checker not available; design not checked"}
    report = check(source, on_event=on_event)
    return report.to_dict()


def sandbox_limits(data_dir: Path, out_dir: Path, wall_s: float, compile_: bool = False):
    import torch
    from genesys.lmade.sandbox import Limits

    return Limits(
        wall_s=wall_s,
        memory_mb=None,  # models up to 350M + optimizer state; the job's own budget governs
        max_file_mb=None,  # checkpoints
        writable_dirs=(str(out_dir),),
        readable_dirs=(str(data_dir),),
        allow_subprocess=compile_,
        cuda=torch.cuda.is_available(),
        pass_env=("GENESYS_GPT2_TIKTOKEN",),
        grace_s=STOP_GRACE_S,  # on timeout/cancel the trainer gets SIGTERM and checkpoints
    )


def verify(
    design: str,
    scale: str = "micro",
    *,
    tokens: int | None = None,
    data_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    seed: int = 42,
    benchmarks: list[str] | None = None,
    train: dict | None = None,
    eval: dict | None = None,
    check: bool = True,
    wall_s: float = DEFAULT_WALL_S,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """check -> sandboxed train + evaluate; returns the result dict (see module docstring).

    Setting ``cancel`` (or reaching ``wall_s``) stops training gracefully: the trainer
    checkpoints, the result has status "interrupted", and ``resume=True`` continues it.
    """
    from genesys.lmade.corpus import cache_dir
    from genesys.lmade.data import PreparedData, prepare
    from genesys.lmade.sandbox import run_sandboxed
    from genesys.lmade.scales import get_scale

    started = time.time()
    get_scale(scale)  # unknown scales fail before any work
    source, name = resolve_design(design)
    emit = on_event or (lambda event: None)
    report = run_check(source, name, on_event) if check else {"valid": None, "note": "skipped"}
    data_path = Path(data_dir) if data_dir else prepare(on_progress=lambda m: log.info(m))
    PreparedData(data_path)  # clear error for a bad --data before starting the child
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    out_path = Path(out_dir) if out_dir else cache_dir() / "runs" / f"{name}-{scale}-{digest}"
    out_path.mkdir(parents=True, exist_ok=True)
    base = {"design": name, "scale": scale, "check": report}
    if report.get("valid") is False:
        failed = next((c for c in report.get("checks", []) if not c.get("passed")), {})
        result = {
            **base,
            "status": "failed",
            "reason": f"check failed: {failed.get('name')}: {failed.get('message', '')}",
            "fitness": None,
        }
    else:
        payload = {
            "design_source": source,
            "design_name": name,
            "scale": scale,
            "tokens": tokens,
            "data_dir": str(data_path.resolve()),
            "out_dir": str(out_path.resolve()),
            "resume": resume,
            "seed": seed,
            "benchmarks": benchmarks,
            "train": train or {},
            "eval": eval or {},
        }
        emit({"event": "sandbox_start", "design": name, "scale": scale, "out_dir": str(out_path)})
        limits = sandbox_limits(
            data_path.resolve(), out_path.resolve(), wall_s, bool((train or {}).get("compile"))
        )
        box = run_sandboxed(TARGET, payload, limits, on_event=emit, cancel=cancel)
        if isinstance(box.value, dict):  # also after a graceful stop (timeout, cancel)
            result = {**base, **box.value}
        else:
            result = {
                **base,
                "status": "failed",
                "reason": f"{box.reason}: {box.error}",
                "traceback": box.traceback,
                "output_tail": box.output_tail,
                "fitness": None,
            }
        result["sandbox"] = {
            "isolation": box.isolation,
            "cpu_s": box.cpu_s,
            "peak_rss_mb": box.peak_rss_mb,
            "reason": box.reason,
        }
    result["total_wall_s"] = round(time.time() - started, 3)
    result["out_dir"] = str(out_path)
    (out_path / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result

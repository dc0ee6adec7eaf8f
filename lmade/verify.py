"""Verification of a design at a scale: check -> train -> evaluate -> one JSON result.

``verify(design, scale, ...)`` (trusted side: CLI, GPU agent) resolves the design, runs the
checker (genesys.lmade.checker), makes sure the data exists, then ``grade``s it: a sandboxed
worker (genesys.lmade.verify_job) trains the design on a training-only view of the data,
and this process, where no design code runs, scores it by asking the worker for
log-probabilities of inputs it chooses (genesys.lmade.scoring): validation loss, lm-eval's
tasks, bits per byte, fitness and their standard errors are all computed here. The result
dict is also written to ``OUT/result.json`` (without following links planted there).

The result: the worker's training report (``verify_job``; monitoring only) plus
"eval" {tasks, normalised, stderr, wall_s, spot_checks}, "fitness", "fitness_stderr",
"metrics" and "stderr" (val_loss, bits_per_byte and the normalised accuracies), "check"
(the checker's report) and "sandbox" (isolation, cpu_s, peak_rss_mb); a crash of the worker
is status "failed" with the error and traceback, a worker caught looking ahead while scoring
is status "failed" with the reason.
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

TARGET = "genesys.lmade.verify_job:serve"
EVAL_SEED = 1234  # draws the evaluation items: the same for every design and training seed
VAL_BATCH = 8
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


def _heldout_loss(scorer, windows, batch: int = VAL_BATCH) -> tuple[float, float]:
    """Mean next-token loss over validation windows (B, L + 1), and its standard error
    over the windows."""
    import random
    import statistics

    import torch
    from genesys.lmade.scoring import next_token_query

    per_window: list[float] = []
    decoys = random.Random(len(windows))
    for start in range(0, len(windows), batch):
        rows = torch.from_numpy(windows[start:start + batch])
        query = next_token_query(rows, 0, decoys, scorer.vocab_size)[:, :-1]
        logprobs, _ = scorer(rows[:, :-1].contiguous(), query.contiguous())
        per_window += [float(-v) for v in logprobs[:, :, 0].mean(dim=1)]
    mean = statistics.fmean(per_window)
    se = statistics.stdev(per_window) / len(per_window) ** 0.5 if len(per_window) > 1 else 0.0
    return mean, se


def _score(box, data, report: dict, payload: dict, eval_seed: int, cuda: bool) -> dict:
    """Everything selection uses, computed here from the worker's log-probabilities."""
    import secrets

    from genesys.lmade.data import sequential_windows
    from genesys.lmade.eval_tasks import OFFLINE_TASKS, PPL_TASK
    from genesys.lmade.evaluator import evaluate
    from genesys.lmade.scales import get_scale
    from genesys.lmade.scoring import RemoteScorer

    rung = get_scale(payload["scale"])
    config = (report.get("train") or {}).get("config") or {}
    context = config.get("context")
    context = context if isinstance(context, int) and 8 <= context <= rung.context else rung.context
    windows_n = config.get("eval_windows")
    windows_n = windows_n if isinstance(windows_n, int) and 1 <= windows_n <= 4096 else 32
    scorer = RemoteScorer(box, data.vocab_size, seed=secrets.randbits(32),
                          tolerance=5e-2 if cuda else 1e-3)
    val_loss, val_se = _heldout_loss(
        scorer, sequential_windows(data.shards("val"), context, windows_n))
    opts = {k: v for k, v in (payload.get("eval") or {}).items()
            if k in ("n_items", "batch_size", "limit")}
    evaluation = evaluate(scorer, data.tokenizer, data.texts("test"),
                          payload.get("benchmarks") or OFFLINE_TASKS, seed=eval_seed,
                          max_length=context, **opts)
    spot_checks = scorer.finish()
    metrics = {"val_loss": val_loss, **evaluation.normalised}
    stderr = {"val_loss": val_se, **evaluation.normalised_stderr}
    bpb = evaluation.tasks.get(PPL_TASK, {}).get("bits_per_byte")
    if bpb is not None:
        metrics["bits_per_byte"] = bpb
        if "bits_per_byte" in evaluation.stderr.get(PPL_TASK, {}):
            stderr["bits_per_byte"] = evaluation.stderr[PPL_TASK]["bits_per_byte"]
    train = dict(report.get("train") or {})
    train["reported_val_loss"] = train.pop("val_loss", None)  # the worker's, monitoring only
    train.pop("val_loss_stderr", None)
    train.update(val_loss=val_loss, val_loss_stderr=val_se)
    return {"train": train, "fitness": evaluation.fitness,
            "fitness_stderr": evaluation.fitness_stderr, "metrics": metrics, "stderr": stderr,
            "eval_seed": eval_seed,
            "eval": {"tasks": evaluation.tasks, "normalised": evaluation.normalised,
                     "stderr": evaluation.stderr, "wall_s": evaluation.wall_s,
                     "spot_checks": spot_checks}}


def grade(payload: dict, limits, data, *, target: str = TARGET, eval_seed: int = EVAL_SEED,
          on_event: EventCallback | None = None, cancel: threading.Event | None = None):
    """Train in a sandboxed worker, score here; (result value or None, SandboxResult).

    ``payload["data_dir"]`` is the worker's training view, ``data`` the full prepared data
    that only this process reads."""
    from genesys.lmade.sandbox import SessionClosed, open_session
    from genesys.lmade.scoring import ScoringRefused

    value = None
    box = open_session(target, payload, limits, on_event=on_event, cancel=cancel)
    try:
        value = dict(box.call("train"))
        if value.get("status") == "ok":
            (on_event or (lambda e: None))({"event": "evaluate", "design": value.get("design"),
                                            "scale": payload["scale"]})
            value.update(_score(box, data, value, payload, eval_seed, limits.cuda))
    except ScoringRefused as exc:
        value = {**(value or {}), "status": "failed", "failure_kind": "design",
                 "reason": str(exc), "fitness": None}
    except (SessionClosed, TimeoutError):
        value = value if value and value.get("status") != "ok" else None
    finally:
        result = box.close()
    return value, result


def write_result(out_dir: Path, result: dict) -> None:
    """``out_dir/result.json``, never through a link the sandbox left there."""
    import os

    folder = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            os.unlink("result.json", dir_fd=folder)  # a planted link goes, not its target
        except FileNotFoundError:
            pass
        fd = os.open("result.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                     0o644, dir_fd=folder)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(result, indent=2, default=str))
    finally:
        os.close(folder)


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
    eval_seed: int = EVAL_SEED,
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
    from genesys.lmade.data import PreparedData, prepare, training_view
    from genesys.lmade.scales import get_scale

    started = time.time()
    get_scale(scale)  # unknown scales fail before any work
    source, name = resolve_design(design)
    emit = on_event or (lambda event: None)
    report = run_check(source, name, on_event) if check else {"valid": None, "note": "skipped"}
    data_path = Path(data_dir) if data_dir else prepare(on_progress=lambda m: log.info(m))
    data = PreparedData(data_path)  # clear error for a bad --data before starting the child
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
        view = training_view(data, out_path.with_name(out_path.name + ".train-data"))
        payload = {
            "design_source": source,
            "design_name": name,
            "scale": scale,
            "tokens": tokens,
            "data_dir": str(view.resolve()),
            "out_dir": str(out_path.resolve()),
            "resume": resume,
            "seed": seed,
            "benchmarks": benchmarks,
            "train": train or {},
            "eval": eval or {},
        }
        emit({"event": "sandbox_start", "design": name, "scale": scale, "out_dir": str(out_path)})
        limits = sandbox_limits(
            view.resolve(), out_path.resolve(), wall_s, bool((train or {}).get("compile"))
        )
        value, box = grade(payload, limits, data, eval_seed=eval_seed, on_event=emit,
                           cancel=cancel)
        if value is not None:  # also after a graceful stop (timeout, cancel)
            result = {**base, **value}
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
    write_result(out_path, result)
    return result

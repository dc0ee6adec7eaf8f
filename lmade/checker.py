"""The symbolic checker: ``check(design) -> CheckReport``.

The format check runs here, in the parent, on the AST only (``checker_static``). Every
check that runs design code (init, forward, causality, differentiability, numerics,
effectiveness, efficiency) is split in two: ONE sandboxed worker (``checker_worker``)
builds the design and returns raw outputs for the inputs that the grader
(``checker_grade``, in this process, where no design code runs) chooses; the grader
computes every verdict. If the worker dies, is killed or is caught doing something
forbidden, the check that was running fails with the sandbox's reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from genesys.design import Design

from .checker_static import check_source
from .sandbox import Limits, SandboxResult, SessionClosed, open_session

CHECK_NAMES = ("format", "init", "forward", "causality", "differentiability", "numerics",
               "effectiveness", "efficiency")
WORKER_TARGET = "genesys.lmade.checker_worker:serve"
# One thread: tiny models gain nothing from more, and OpenMP barriers stall badly on a
# loaded machine (10x slower steps measured with 2 threads on a busy 2-core box).
DEFAULT_LIMITS = Limits(wall_s=120.0, cpu_s=300.0, memory_mb=4096, max_procs=512, threads=1)


@dataclass
class CheckSettings:
    """Knobs of the runtime checks; the defaults suit the ``check`` scale on a CPU."""

    scale: str = "check"
    vocab_size: int = 256  # byte-level tokens of real text
    seq_len: int = 128
    batch_size: int = 4
    causal_tolerance: float = 1e-4  # max change relative to the largest |logit| (fp32)
    causal_probes: int = 6  # random (batch, length, cut, kind) probes, plus spot checks
    probe_seed: int | None = None  # None: fresh per check, so probes cannot be predicted
    train_steps: int = 12
    lr: float = 3e-3
    heldout_batches: int = 2  # scored by the grader before and after training
    baseline_margin: float = 0.1  # share of GPT's gain over the embedding-only model below
    # which a design whose block parameters get no gradient "adds nothing"
    baseline_slack: float = 0.1  # nats above the embedding-only model: worse than no blocks
    efficiency_batch: int = 8  # efficiency is measured at a training-like shape, where
    efficiency_seq_len: int = 256  # per-operation overhead does not dominate
    efficiency_rounds: int = 5  # interleaved design/reference rounds
    time_factor: float = 3.0  # step time limit relative to the GPT seed
    memory_factor: float = 4.0  # peak memory limit relative to the GPT seed
    loss_factor: float = 3.0  # final loss limit relative to the GPT seed
    memory_floor_mb: float = 16.0  # extra peak memory below this is never judged
    seed: int = 0

    @classmethod
    def for_scale(cls, scale: str, **overrides: object) -> CheckSettings:
        from .scales import get_scale

        rung = get_scale(scale)
        base = cls(scale=rung.name, seq_len=min(rung.context, 256 if rung.ladder else 128),
                   batch_size=min(rung.batch_size, 4))
        known = {f.name for f in fields(cls)}
        return cls(**{**asdict(base), **{k: v for k, v in overrides.items() if k in known}})


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    warning: str = ""


@dataclass
class CheckReport:
    valid: bool
    digest: str
    checks: list[CheckResult] = field(default_factory=list)
    params: int = 0
    seconds: float = 0.0
    design: str = ""
    sandbox: dict = field(default_factory=dict)
    fingerprint: str = ""  # what the initialised network computes (checker_grade.fingerprint)

    @property
    def failed(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.passed), None)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)


def _resolve(design: Design | str | Path) -> tuple[str, str]:
    """(source text, name) of a Design, a seed name, a design file path or source text."""
    if isinstance(design, Design):
        return design.to_source(), design.name
    from . import seeds

    text = str(design)
    if isinstance(design, str) and text in seeds.names():
        return seeds.source(text), text
    if isinstance(design, Path) or ("\n" not in text and text.endswith(".py")):
        path = Path(text)
        return path.read_text(), path.stem
    return text, "design"


class _Progress:
    """Collects the child's check verdicts and remembers which check is running."""

    def __init__(self, on_event: Callable[[dict], None] | None):
        self.on_event = on_event
        self.done: list[CheckResult] = []
        self.running: str | None = None
        self.params = 0

    def __call__(self, event: dict) -> None:
        if event.get("status") == "start":
            self.running = str(event.get("check"))
        elif event.get("status") == "done":
            self.done.append(CheckResult(str(event["name"]), bool(event["passed"]),
                                         str(event["message"]), str(event.get("warning", ""))))
            self.running = None
            self.params = int(event.get("params") or self.params)
        if self.on_event is not None:
            self.on_event(event)


def blocked_message(check: str, violation: dict) -> str:
    return (f"the design attempted a forbidden operation during the {check} check: "
            f"{violation.get('operation')} ({str(violation.get('detail'))[:500]}); design code "
            "may not touch files, processes or the network")


def _sandbox_message(result: SandboxResult, check: str, limits: Limits) -> str:
    if result.reason == "blocked" and result.violations:
        return blocked_message(check, result.violations[0])
    return {
        "timeout": f"the design did not finish the {check} check within the wall-clock limit "
                   f"of {limits.wall_s:g} s (an endless loop, or far too slow?)",
        "cpu_limit": f"the design exceeded the CPU-time limit during the {check} check "
                     f"({result.error}; an endless loop, or far too slow?)",
        "memory_limit": f"the design ran out of memory during the {check} check (sandbox limit "
                        f"{limits.memory_mb} MB of address space): {result.error}",
        "signal": f"the process running the design died during the {check} check: "
                  f"{result.error} (a crash in native code, or the design killed itself)",
        "exit": f"the design ended the process during the {check} check: {result.error}; "
                "design code must not exit",
    }.get(result.reason, f"the checker failed during the {check} check: {result.reason}: "
                         f"{result.error}\n{result.traceback[-2000:]}")


def _merge(progress: _Progress, result: SandboxResult, limits: Limits) -> list[CheckResult]:
    """The grader's verdicts, with the sandbox's own findings folded in."""
    checks = list(progress.done)
    if progress.running is None and (result.ok or result.reason == "blocked"):
        return checks  # every verdict is the grader's (it fails a check that was blocked)
    culprit = progress.running or "init"
    message = _sandbox_message(result, culprit, limits)
    kept = []
    for c in checks:
        if c.name == culprit:
            break
        kept.append(c)
    return kept + [CheckResult(culprit, False, message)]


def check(
    design: Design | str | Path,
    scale: str = "check",
    limits: Limits | None = None,
    settings: CheckSettings | None = None,
    on_event: Callable[[dict], None] | None = None,
) -> CheckReport:
    """Check a design (a Design, a seed name, a design file or source text).

    Stops at the first failing check; warnings do not stop it. Never raises for anything
    the design does; a missing file raises OSError.
    """
    started = time.monotonic()
    source, name = _resolve(design)
    static = check_source(source, name)
    digest = static.design.digest if static.design else hashlib.sha256(source.encode()).hexdigest()
    report = CheckReport(valid=False, digest=digest, design=name)
    message = "; ".join(static.errors) or (
        f"{len(static.design.units)} units, root {static.design.root}, imports allowed")
    report.checks.append(CheckResult("format", static.passed, message, "; ".join(static.warnings)))
    if static.passed:
        limits = limits or DEFAULT_LIMITS
        settings = settings or CheckSettings.for_scale(scale)
        progress = _Progress(on_event)
        result, grader = _run_grader(source, name, settings, limits, progress)
        report.checks += _merge(progress, result, limits)
        report.params = grader.params
        report.fingerprint = grader.fingerprint
        report.sandbox = {"isolation": result.isolation, "reason": result.reason,
                          "cpu_s": result.cpu_s, "peak_rss_mb": result.peak_rss_mb,
                          "probe_seed": grader.probe_seed}
        report.valid = (all(c.passed for c in report.checks)
                        and [c.name for c in report.checks] == list(CHECK_NAMES))
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _run_grader(source: str, name: str, settings: CheckSettings, limits: Limits,
                progress: _Progress):
    """Grade the design against one sandboxed worker; (how the worker ended, the grader)."""
    from .checker_grade import Grader  # torch: only where designs are checked

    payload = {"source": source, "name": name, "seed": settings.seed, "scale": settings.scale,
               "vocab_size": settings.vocab_size,
               "context": max(settings.seq_len, settings.efficiency_seq_len)}
    session = open_session(WORKER_TARGET, payload, limits, on_event=progress)
    grader = Grader(session, settings, progress)
    try:
        grader.run(CHECK_NAMES[1:])
    except (SessionClosed, TimeoutError):
        pass  # the worker's end (limit, crash) is folded in by _merge
    finally:
        result = session.close()
    return result, grader


def default_limits(timeout_s: float | None = None) -> Limits:
    """The checker's limits, with the wall clock (and CPU budget) set from a timeout."""
    if timeout_s is None:
        return DEFAULT_LIMITS
    return replace(DEFAULT_LIMITS, wall_s=timeout_s, cpu_s=timeout_s * (os.cpu_count() or 1))

"""Runtime monitor: stops a training run that has gone wrong, with a reason.

Rules (checked after every optimizer step, on values that are identical on every DDP rank):
- the loss or the gradient norm is NaN/Inf;
- the loss is above ``max_loss_factor`` x ln(vocab) (uniform guessing scores ln(vocab),
  so this means confidently wrong predictions: blow-up);
- after ``min_steps``, the smoothed loss has risen ``max_loss_rise`` nats above its best;
- after ``min_steps``, the gradient norm stayed above ``grad_norm_factor`` x the median of
  the first steps' norms for ``patience`` consecutive steps;
- the median step time of the last ``time_window`` steps is above ``slowdown_factor`` x
  the design's own first steps (after ``warmup_steps`` steps of compilation/caching), or
  above ``max_step_s`` when configured (a median, so that a busy host's spikes do not
  stop a run). The trainer feeds it the process CPU time of each step on a CPU, so other
  jobs loading the machine do not slow the measured step (the design's own work does).

Every stop is an :class:`Abort`: the reason (a str) with its ``kind``: ``design`` (NaN,
blow-up, divergence: the design is at fault, retrying cannot help) or ``infrastructure``
(slowness: another attempt on a quieter or healthier machine may succeed).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

DESIGN, INFRASTRUCTURE = "design", "infrastructure"


class Abort(str):
    """Why a run stops (the string) and who caused it (``kind``)."""

    kind: str

    def __new__(cls, reason: str, kind: str) -> Abort:
        out = super().__new__(cls, reason)
        out.kind = kind
        return out


@dataclass
class MonitorConfig:
    max_loss_factor: float = 3.0
    max_loss_rise: float = 2.0
    grad_norm_factor: float = 100.0
    slowdown_factor: float = 10.0
    max_step_s: float | None = None
    min_steps: int = 20
    warmup_steps: int = 3
    baseline_steps: int = 8
    patience: int = 3
    time_window: int = 20
    ema: float = 0.9


@dataclass
class RuntimeMonitor:
    vocab_size: int
    config: MonitorConfig = field(default_factory=MonitorConfig)
    steps: int = 0
    ema_loss: float | None = None
    best_ema: float = math.inf
    grad_norms: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    recent_times: list[float] = field(default_factory=list)
    grad_strikes: int = 0

    def check(self, step: int, loss: float, grad_norm: float, step_s: float) -> Abort | None:
        """None while all is well, else why the run must stop."""
        reason = self._check_training(step, loss, grad_norm)
        if reason is not None:
            return Abort(reason, DESIGN)
        reason = self._check_time(step, step_s)
        return None if reason is None else Abort(reason, INFRASTRUCTURE)

    def _check_training(self, step: int, loss: float, grad_norm: float) -> str | None:
        c = self.config
        self.steps += 1
        if not math.isfinite(loss):
            return f"loss is {loss} at step {step}"
        if not math.isfinite(grad_norm):
            return f"gradient norm is {grad_norm} at step {step}"
        ceiling = c.max_loss_factor * math.log(self.vocab_size)
        if loss > ceiling:
            return f"loss exploded at step {step}: {loss:.3g} > {c.max_loss_factor} x ln(vocab) = {ceiling:.3g}"
        self.ema_loss = (
            loss if self.ema_loss is None else c.ema * self.ema_loss + (1 - c.ema) * loss
        )
        if self.steps > c.min_steps:
            self.best_ema = min(self.best_ema, self.ema_loss)
            if self.ema_loss > self.best_ema + c.max_loss_rise:
                return (
                    f"loss diverged at step {step}: smoothed loss {self.ema_loss:.3f} rose more "
                    f"than {c.max_loss_rise} above its best {self.best_ema:.3f}"
                )
        if len(self.grad_norms) < c.baseline_steps:
            self.grad_norms.append(grad_norm)
        elif self.steps > c.min_steps:
            bound = c.grad_norm_factor * statistics.median(self.grad_norms)
            self.grad_strikes = self.grad_strikes + 1 if grad_norm > bound else 0
            if self.grad_strikes >= c.patience:
                return f"gradient norm exploded at step {step}: {grad_norm:.3g} > {bound:.3g} for {c.patience} steps"
        return None

    def _check_time(self, step: int, step_s: float) -> str | None:
        c = self.config
        if self.steps <= c.warmup_steps:
            return None
        if len(self.step_times) < c.baseline_steps:
            self.step_times.append(step_s)
            return None
        baseline = statistics.median(self.step_times)
        self.recent_times = [*self.recent_times[-(c.time_window - 1) :], step_s]
        recent = statistics.median(self.recent_times)
        bound = min([c.slowdown_factor * baseline] + ([c.max_step_s] if c.max_step_s else []))
        if len(self.recent_times) >= min(c.time_window, c.patience) and recent > bound:
            return (
                f"step time {recent:.3g}s (median of the last {len(self.recent_times)} steps) at "
                f"step {step} exceeds {bound:.3g}s (first steps took {baseline:.3g}s; limit "
                f"{c.slowdown_factor}x or max_step_s={c.max_step_s})"
            )
        return None

    def state_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("config", "vocab_size")}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

"""Pre-training of a design at a scale: ``train(design, scale, data) -> TrainResult``.

Plain PyTorch loop: AdamW (decay on matrices only), linear warmup over ``warmup_frac`` of
the steps then cosine to ``min_lr_ratio`` x lr, gradient clipping, bf16 autocast (SDPA is
the design's own attention), gradient accumulation that doubles on CUDA OOM, a runtime
monitor (genesys.lmade.monitor), checkpoints at intervals and on SIGTERM, bit-for-bit
resume (data order is a pure function of the step; model, optimizer, scheduler, RNG and
monitor state are restored), DDP when started under ``torchrun`` (WORLD_SIZE > 1).

The monitor judges step time on the process CPU time of a step when training on a CPU
(other jobs on the host slow the wall clock, not the work a step does). The result keeps
the train and validation curves (``{step, loss, tokens}`` points, at most ``CURVE_POINTS``),
throughput, peak memory, the standard error of the final validation loss over its windows,
and for a stopped run ``failure_kind``: ``design`` (NaN, blow-up, divergence) or
``infrastructure`` (slowness, wall-time limit, SIGTERM), so a caller knows whether
another attempt can succeed.

Progress goes to ``on_event(dict)`` (one dict per event, ``event`` names it: start,
progress, eval, checkpoint, oom, abort, done) and to a tqdm bar when stderr is a terminal.
"""

from __future__ import annotations

import math
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from genesys.design import Design, load_design
from genesys.lmade.data import PreparedData, TokenBatches, sequential_windows
from genesys.lmade.model import build_lm, count_params
from genesys.lmade.monitor import INFRASTRUCTURE, Abort, MonitorConfig, RuntimeMonitor
from genesys.lmade.scales import Scale, get_scale
from torch import nn

EventCallback = Callable[[dict], None]
CHECKPOINT = "checkpoint.pt"
CURVE_POINTS = 200


class TrainError(RuntimeError):
    """Training cannot start (bad config, mismatching checkpoint); the message says why."""


@dataclass
class TrainConfig:
    """Overrides of the scale's defaults (None = take it from the scale) and loop knobs."""

    tokens: int | None = None  # token budget; default scale.token_budget
    context: int | None = None  # sequence length; default scale.context
    batch_size: int | None = None  # sequences per optimizer step; default scale.batch_size
    lr: float | None = None
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.02
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 42
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False
    device: str | None = None  # default: cuda if available, else cpu
    grad_accum: int = 1  # initial micro-batches per step (doubles on OOM)
    checkpoint_every: int | None = None  # steps; default ~10 per run
    checkpoint_interval_s: float = 900.0
    eval_every: int | None = None  # steps; default ~10 per run
    eval_windows: int = 32
    progress_interval_s: float = 2.0
    max_wall_s: float | None = None
    monitor: MonitorConfig = field(default_factory=MonitorConfig)


@dataclass
class TrainResult:
    design: str
    digest: str
    scale: str
    config: dict
    d_model: int
    n_block: int
    params: int
    non_embedding_params: int
    steps: int
    total_steps: int
    tokens_seen: int
    train_loss: float | None
    val_loss: float | None
    val_loss_stderr: float | None  # standard error of val_loss over its evaluation windows
    loss_curve: list[dict]  # {step, loss, tokens}: bin means of the train loss, <= CURVE_POINTS
    val_curve: list[dict]  # {step, loss, tokens} at each validation
    tokens_per_s: float
    peak_memory_bytes: int
    wall_s: float
    device: str
    world_size: int
    aborted: bool = False
    reason: str | None = None
    failure_kind: str | None = None  # aborted: "design" | "infrastructure"
    checkpoint: str | None = None
    model: nn.Module | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)  # deep-copies fields; the model is replaced below
        out.pop("model")
        return out


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: str | None) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 or os.environ.get("GENESYS_FORCE_DDP"):
        import torch.distributed as dist

        dist_info = _Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
        use_cuda = torch.cuda.is_available() and device != "cpu"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if use_cuda:
            torch.cuda.set_device(dist_info.local_rank)
            return dist_info, torch.device("cuda", dist_info.local_rank)
        return dist_info, torch.device("cpu")
    return _Dist(), torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _as_design(design: Design | str | Path) -> Design:
    return design if isinstance(design, Design) else load_design(design)


def lr_lambda(total_steps: int, warmup_frac: float, min_ratio: float) -> Callable[[int], float]:
    warmup = max(1, round(warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def make_optimizer(model: nn.Module, lr: float, cfg: TrainConfig, device: torch.device):
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, fused=device.type == "cuda")


def autocast_for(device: torch.device, precision: str):
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return nullcontext()
    if precision != "bf16":
        raise TrainError(f"unknown precision {precision!r} (bf16 or fp32)")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err)


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def downsample(curve: list[tuple[int, int, float]], points: int = CURVE_POINTS) -> list[dict]:
    """(step, tokens, loss) rows as {step, loss, tokens} points: the mean loss of consecutive
    bins (labelled by their last step) so that at most `points` remain."""
    if not curve:
        return []
    size = math.ceil(len(curve) / points)
    out = []
    for i in range(0, len(curve), size):
        chunk = curve[i : i + size]
        loss = round(sum(c[2] for c in chunk) / len(chunk), 5)
        out.append({"step": int(chunk[-1][0]), "loss": loss, "tokens": int(chunk[-1][1])})
    return out


def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (sample standard deviation / sqrt(n); 0 for n < 2)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


class _StepClock:
    """Seconds of one step as the monitor judges them: process CPU time on a CPU (a loaded
    host stretches the wall clock, not the step's work), wall time with CUDA kernels."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return time.perf_counter()
        return time.process_time()


class _SigtermFlag:
    """Sets `hit` on SIGTERM while active (only the main thread can install handlers)."""

    def __init__(self):
        self.hit = False
        self._previous: Any = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.hit = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class Trainer:
    """One training run; `run()` returns the TrainResult. See module docstring."""

    def __init__(
        self,
        design: Design | str | Path,
        scale: str | Scale,
        data: PreparedData | str | Path,
        config: TrainConfig | None = None,
        out_dir: str | Path | None = None,
        resume: bool = False,
        on_event: EventCallback | None = None,
        progress_bar: bool | None = None,
    ):
        torch.set_flush_denormal(True)
        self.design = _as_design(design)
        self.scale = get_scale(scale)
        self.data = data if isinstance(data, PreparedData) else PreparedData(data)
        self.cfg = config or TrainConfig()
        self.out_dir = Path(out_dir) if out_dir else None
        self.resume = resume
        self.on_event = on_event
        self.progress_bar = sys.stderr.isatty() if progress_bar is None else progress_bar
        self.dist, self.device = _setup_distributed(self.cfg.device)

        s, c = self.scale, self.cfg
        self.context = c.context or s.context
        self.batch_size = c.batch_size or s.batch_size
        self.lr = c.lr or s.lr
        self.tokens_target = c.tokens or s.token_budget
        if self.tokens_target <= 0:
            raise TrainError(f"scale {s.name} has no token budget; pass tokens")
        if self.batch_size % self.dist.world_size:
            raise TrainError(
                f"batch size {self.batch_size} is not divisible by world size {self.dist.world_size}"
            )
        self.tokens_per_step = self.batch_size * self.context
        self.total_steps = max(1, math.ceil(self.tokens_target / self.tokens_per_step))

        torch.manual_seed(c.seed)
        self.model = build_lm(
            self.design, s, self.data.vocab_size, device=self.device, context=self.context
        )
        self.forward_model: nn.Module = self.model
        if self.dist.world_size > 1 or os.environ.get("GENESYS_FORCE_DDP"):
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.model, device_ids=ids)
        if c.compile:
            self.forward_model = torch.compile(self.forward_model)
        self.optimizer = make_optimizer(self.model, self.lr, c, self.device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.total_steps, c.warmup_frac, c.min_lr_ratio)
        )
        self.monitor = RuntimeMonitor(self.data.vocab_size, c.monitor)
        self.batches = TokenBatches(
            self.data.shards("train"),
            self.context,
            self.batch_size,
            c.seed,
            self.dist.rank,
            self.dist.world_size,
        )
        self.accum = max(1, c.grad_accum)
        self.step = 0
        self.tokens_seen = 0
        self.curve: list[tuple[int, int, float]] = []
        self.val_curve: list[dict] = []
        self.val_stderr: float | None = None
        self.wall_before = 0.0  # wall time of earlier (resumed) segments

    # --- events and checkpoints ----------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        if self.on_event is not None and self.dist.main:
            self.on_event(
                {"event": event, "design": self.design.name, "scale": self.scale.name, **fields}
            )

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT if self.out_dir else None

    def _fingerprint(self) -> dict:
        return {
            "digest": self.design.digest,
            "scale": self.scale.name,
            "vocab_size": self.data.vocab_size,
            "context": self.context,
            "batch_size": self.batch_size,
            "total_steps": self.total_steps,
            "seed": self.cfg.seed,
            "lr": self.lr,
            "world_size": self.dist.world_size,
        }

    def save_checkpoint(self, wall_s: float) -> None:
        path = self.checkpoint_path
        if path is None or not self.dist.main:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": self._fingerprint(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "accum": self.accum,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "curve": [list(c) for c in self.curve],
            "val_curve": self.val_curve,
            "val_stderr": self.val_stderr,
            "monitor": self.monitor.state_dict(),
            "wall_s": wall_s,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        self.emit("checkpoint", step=self.step, path=str(path))

    def load_checkpoint(self) -> bool:
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state["fingerprint"] != self._fingerprint():
            raise TrainError(
                f"checkpoint {path} belongs to another run ({state['fingerprint']} != "
                f"{self._fingerprint()}); use another --out or drop --resume"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.tokens_seen, self.accum = (
            state["step"],
            state["tokens_seen"],
            state["accum"],
        )
        torch.set_rng_state(state["rng_cpu"].cpu())
        if state["rng_cuda"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng_cuda"]])
        self.curve = [tuple(c) for c in state["curve"]]
        self.val_curve = state["val_curve"]
        self.val_stderr = state.get("val_stderr")
        self.monitor.load_state_dict(state["monitor"])
        self.wall_before = state["wall_s"]
        return True

    # --- the loop ------------------------------------------------------------------------

    def _train_step(self, step: int) -> tuple[float, float]:
        """Forward/backward over accumulated micro-batches + optimizer step: (loss, grad norm)."""
        x, y = self.batches.batch(step)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        while True:
            try:
                loss = self._accumulate(x, y)
                break
            except RuntimeError as err:
                if not _is_oom(err) or self.accum >= x.size(0):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                self.accum *= 2
                self.emit("oom", step=step, grad_accum=self.accum)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        if self.dist.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(loss, op=dist.ReduceOp.AVG)
        loss_value, norm_value = loss.item(), grad_norm.item()
        if math.isfinite(loss_value) and math.isfinite(norm_value):
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_value, norm_value

    def _accumulate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), device=self.device)
        rows = x.size(0)
        micro = math.ceil(rows / self.accum)
        starts = list(range(0, rows, micro))
        for i, start in enumerate(starts):
            xs, ys = x[start : start + micro], y[start : start + micro]
            last = i == len(starts) - 1
            sync = (
                nullcontext()
                if last or not hasattr(self.forward_model, "no_sync")
                else self.forward_model.no_sync()
            )
            with sync, autocast_for(self.device, self.cfg.precision):
                loss = lm_loss(self.forward_model, xs, ys) * (xs.size(0) / rows)
            loss.backward()
            total += loss.detach()
        return total

    @torch.no_grad()
    def evaluate_val(self) -> float:
        """Mean loss over the validation windows; its standard error goes to val_stderr."""
        self.model.eval()
        windows = torch.from_numpy(
            sequential_windows(self.data.shards("val"), self.context, self.cfg.eval_windows)
        )
        losses: list[float] = []
        micro = max(1, self.batch_size // (self.dist.world_size * self.accum))
        for start in range(0, windows.size(0), micro):
            batch = windows[start : start + micro].to(self.device)
            with autocast_for(self.device, self.cfg.precision):
                logits = self.model(batch[:, :-1]).float()
            per_token = F.cross_entropy(
                logits.transpose(1, 2), batch[:, 1:], reduction="none"
            )
            losses.extend(per_token.mean(dim=1).tolist())
        self.model.train()
        mean, self.val_stderr = mean_and_stderr(losses)
        return mean

    def _stop_reason(
        self, step_result: tuple[float, float], step_s: float, started: float
    ) -> Abort | None:
        loss, norm = step_result
        if self.dist.world_size > 1:  # all ranks must take the same decision
            import torch.distributed as dist

            t = torch.tensor([step_s], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            step_s = t.item()
        reason = self.monitor.check(self.step, loss, norm, step_s)
        if (
            reason is None
            and self.cfg.max_wall_s
            and time.time() - started + self.wall_before > self.cfg.max_wall_s
        ):
            reason = Abort(f"wall time above max_wall_s={self.cfg.max_wall_s}", INFRASTRUCTURE)
        return reason

    def run(self) -> TrainResult:
        c = self.cfg
        resumed = self.resume and self.load_checkpoint()
        every_ckpt = c.checkpoint_every or max(1, self.total_steps // 10)
        every_eval = c.eval_every or max(1, self.total_steps // 10)
        self.emit(
            "start",
            params=count_params(self.model, non_embedding=False),
            non_embedding_params=count_params(self.model),
            d_model=self.model.d_model,
            n_block=self.model.n_block,
            total_steps=self.total_steps,
            tokens_target=self.total_steps * self.tokens_per_step,
            device=str(self.device),
            world_size=self.dist.world_size,
            resumed_from_step=self.step if resumed else None,
        )
        self.model.train()
        started = time.time()
        last_ckpt = last_progress = started
        first_step, reason = self.step, None
        bar = None
        clock = _StepClock(self.device)
        if self.progress_bar and self.dist.main:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True)
        with _SigtermFlag() as sigterm:
            while self.step < self.total_steps:
                t0 = clock.now()
                result = self._train_step(self.step)
                step_s = clock.now() - t0
                self.step += 1
                self.tokens_seen += self.tokens_per_step
                self.curve.append((self.step, self.tokens_seen, result[0]))
                reason = self._stop_reason(result, step_s, started)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{result[0]:.3f}")
                now = time.time()
                if reason:
                    break
                if self.step % every_eval == 0 or self.step == self.total_steps:
                    val = self.evaluate_val()
                    self.val_curve.append(
                        {"step": self.step, "loss": round(val, 5), "tokens": self.tokens_seen}
                    )
                    self.emit("eval", step=self.step, val_loss=val, val_loss_stderr=self.val_stderr)
                if now - last_progress >= c.progress_interval_s or self.step in (
                    first_step + 1,
                    self.total_steps,
                ):
                    last_progress = now
                    done = self.tokens_seen - first_step * self.tokens_per_step
                    rate = done / max(1e-9, now - started)
                    self.emit(
                        "progress",
                        step=self.step,
                        total_steps=self.total_steps,
                        tokens=self.tokens_seen,
                        loss=result[0],
                        grad_norm=result[1],
                        lr=self.scheduler.get_last_lr()[0],
                        tokens_per_s=rate,
                        elapsed_s=now - started + self.wall_before,
                        eta_s=(self.total_steps - self.step)
                        * self.tokens_per_step
                        / max(rate, 1e-9),
                    )
                if sigterm.hit:
                    self.save_checkpoint(now - started + self.wall_before)
                    reason = Abort(
                        f"interrupted by SIGTERM at step {self.step} (checkpoint saved; "
                        "resume with --resume)",
                        INFRASTRUCTURE,
                    )
                    break
                if self.step < self.total_steps and (
                    self.step % every_ckpt == 0 or now - last_ckpt >= c.checkpoint_interval_s
                ):
                    self.save_checkpoint(now - started + self.wall_before)
                    last_ckpt = now
        if bar is not None:
            bar.close()
        wall = time.time() - started
        if reason:
            self.emit("abort", step=self.step, reason=str(reason), failure_kind=reason.kind)
        elif self.checkpoint_path is not None and self.dist.main:
            self.save_checkpoint(wall + self.wall_before)
        trained = (self.step - first_step) * self.tokens_per_step
        result = TrainResult(
            design=self.design.name,
            digest=self.design.digest,
            scale=self.scale.name,
            config={
                **asdict(self.cfg),
                "context": self.context,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "tokens": self.tokens_target,
                "grad_accum": self.accum,
            },
            d_model=self.model.d_model,
            n_block=self.model.n_block,
            params=count_params(self.model, non_embedding=False),
            non_embedding_params=count_params(self.model),
            steps=self.step,
            total_steps=self.total_steps,
            tokens_seen=self.tokens_seen,
            train_loss=self.curve[-1][2] if self.curve else None,
            val_loss=self.val_curve[-1]["loss"] if self.val_curve else None,
            val_loss_stderr=(
                round(self.val_stderr, 6)
                if self.val_curve and self.val_stderr is not None
                else None
            ),
            loss_curve=downsample(self.curve),
            val_curve=downsample(
                [(p["step"], p["tokens"], p["loss"]) for p in self.val_curve]
            ),
            tokens_per_s=round(trained / max(wall, 1e-9), 1),
            peak_memory_bytes=_peak_memory(self.device),
            wall_s=round(wall + self.wall_before, 3),
            device=str(self.device),
            world_size=self.dist.world_size,
            aborted=reason is not None,
            reason=str(reason) if reason else None,
            failure_kind=reason.kind if reason else None,
            checkpoint=str(self.checkpoint_path) if self.checkpoint_path else None,
            model=self.model,
        )
        self.emit(
            "done",
            step=self.step,
            tokens=self.tokens_seen,
            train_loss=result.train_loss,
            val_loss=result.val_loss,
            aborted=result.aborted,
            reason=result.reason,
            failure_kind=result.failure_kind,
            wall_s=result.wall_s,
        )
        return result


def train(
    design: Design | str | Path,
    scale: str | Scale,
    data: PreparedData | str | Path,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    on_event: EventCallback | None = None,
    progress_bar: bool | None = None,
) -> TrainResult:
    """Pre-train `design` at `scale` on a prepared dataset; see :class:`TrainConfig`."""
    return Trainer(design, scale, data, config, out_dir, resume, on_event, progress_bar).run()

"""The runtime checks, run inside the sandbox on one design: ``run(payload, emit)``.

init -> forward -> causality -> differentiability -> numerics -> effectiveness ->
efficiency, stopping at the first failure. Each check emits ``{"check", "status":
"start"}`` before it runs (so the parent can blame the right check if the child dies or
is killed) and ``{"check", "passed", "message", "warning"}`` when it ends. Messages are
written for whoever fixes the design: what was observed, and the traceback trimmed to the
design's own lines, numbered as in the design file.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import math
import statistics
import sysconfig
import time
import traceback
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from genesys.design import Design, execute_design, load_design
from genesys.lmade import sandbox_guard, seeds
from genesys.lmade.checker import CHECK_NAMES, CheckSettings
from genesys.lmade.gau import GAUBase
from genesys.lmade.model import GenesysLM, autotune, count_params
from genesys.lmade.scales import get_scale
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

Emit = Callable[[dict], None]
# Stdlib modules whose docstrings are the offline text for the effectiveness check.
TEXT_MODULES = ("textwrap", "json/__init__", "statistics", "difflib")  # ~60 KB of prose


class CheckFailed(Exception):
    """A check's verdict: the design fails it; the message says what was observed."""


@dataclasses.dataclass(frozen=True)
class SourceDesign(Design):
    """A Design that executes its original file text (once), so that tracebacks carry the
    design file's own line numbers under the filename ``<design:NAME>``."""

    source_text: str = ""

    @functools.cached_property
    def _namespace(self) -> dict[str, Any]:
        return execute_design(self.source_text, design_filename(self.name), self.digest)

    def namespace(self) -> dict[str, Any]:
        return self._namespace


def design_filename(name: str) -> str:
    return f"<design:{name}>"


def explain(exc: BaseException, name: str) -> str:
    """The exception and the design's own frames (file line numbers), innermost last."""
    filename = design_filename(name)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    text = f"{type(exc).__name__}: {exc}"
    if frames:
        lines = [f"  line {f.lineno}, in {f.name}: {(f.line or '').strip()}" for f in frames[-8:]]
        text += "\nin the design:\n" + "\n".join(lines)
    return text


def _load(source: str, name: str) -> SourceDesign:
    design = load_design(source, name=name)
    fields = {f.name: getattr(design, f.name) for f in dataclasses.fields(Design)}
    return SourceDesign(**fields, source_text=source)


@functools.cache
def _text_tokens() -> torch.Tensor:
    """Byte-level tokens of English prose: docstrings of some standard-library modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    for module in TEXT_MODULES:
        path = stdlib / f"{module}.py"
        if path.exists():
            tree = ast.parse(path.read_text(encoding="utf-8"))
            parts += [d for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
                      and (d := ast.get_docstring(n))]
    return torch.tensor(list("\n\n".join(parts).encode("utf-8")), dtype=torch.long)


def _batches(steps: int, batch: int, length: int) -> list[torch.Tensor]:
    tokens = _text_tokens()
    need = steps * batch * (length + 1)
    tokens = tokens.repeat(need // len(tokens) + 1)[:need]
    return list(tokens.view(steps, batch, length + 1))


def _lm_loss(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(x[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1))
    return logits, loss


def _owner(model: nn.Module, param_name: str) -> str:
    """'blocks.0.mha.qkv.weight' -> 'blocks.0.mha.qkv.weight (unit MHA)'."""
    path = param_name.split(".")[:-1]
    owner = None
    module: nn.Module = model
    for part in path:
        module = getattr(module, part)
        if isinstance(module, GAUBase):
            owner = type(module).__name__
    return f"{param_name} (unit {owner})" if owner else param_name


def _names(items: list[str], limit: int = 8) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


class _UsedTensors(TorchFunctionMode):
    """Records every tensor that a torch function or method touches during forward."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for value in tree_flatten((args, kwargs or {}))[0]:
            if isinstance(value, torch.Tensor):
                self.ids.add(id(value))
        return func(*args, **(kwargs or {}))


class PeakMemory(TorchDispatchMode):
    """Peak bytes of live tensor storage while active (exact on any device, no allocator
    stats needed): each new storage counts until Python frees it."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._seen: weakref.WeakSet = weakref.WeakSet()

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                storage = value.untyped_storage()
                if storage not in self._seen:
                    self._seen.add(storage)
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, storage.nbytes())
        return out


class Checker:
    def __init__(self, source: str, name: str, settings: CheckSettings, emit: Emit):
        self.source, self.name, self.s, self.emit = source, name, settings, emit
        self.results: list[dict] = []
        self.model: GenesysLM | None = None
        self.params = 0
        self.x: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None
        self.shape: tuple[int, int] | None = None
        self.training: dict[str, Any] = {}
        self.loss = math.nan
        self.reference: GenesysLM | None = None

    def run(self) -> dict:
        torch.manual_seed(self.s.seed)
        torch.set_flush_denormal(True)
        for name in CHECK_NAMES[1:]:  # format ran in the parent
            self.emit({"check": name, "status": "start"})
            warning = ""
            try:
                message, warning = getattr(self, f"check_{name}")()
                passed = True
            except CheckFailed as exc:
                passed, message = False, str(exc)
            except Exception as exc:  # noqa: BLE001 - design code fails in any way
                passed, message = False, explain(exc, self.name)
                if sandbox_guard.failure_reason(exc) == "memory_limit":
                    message = "out of memory (the sandbox's limit): " + message
            result = {"name": name, "passed": passed, "message": message, "warning": warning}
            self.results.append(result)
            self.emit({"check": name, "status": "done", "params": self.params, **result})
            if not passed:
                break
        return {"checks": self.results, "params": self.params, "shape": self.shape,
                "training": self.training}

    # -- checks ---------------------------------------------------------------------------
    def check_init(self) -> tuple[str, str]:
        design = _load(self.source, self.name)
        scale = get_scale(self.s.scale)
        warning = ""
        try:
            d_model, n_block = autotune(design, scale, self.s.vocab_size)
        except ValueError as exc:
            d_model, n_block = scale.d_model, scale.n_block
            warning = f"could not size the design to the {scale.name} target: {exc}"
        self.model = GenesysLM(design, d_model, n_block, self.s.vocab_size, self.s.seq_len)
        self.params = count_params(self.model)
        self.shape = (d_model, n_block)
        return (f"built at d_model={d_model}, n_block={n_block}: {self.params:,} non-embedding "
                f"parameters (target {scale.target_params:,})"), warning

    def check_forward(self) -> tuple[str, str]:
        self.x = torch.randint(0, self.s.vocab_size, (2, self.s.seq_len))
        logits = self.model(self.x)
        want = (2, self.s.seq_len, self.s.vocab_size)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != want:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
            raise CheckFailed(f"the model's logits should be {want}, got {got}")
        if logits.dtype != torch.float32:
            raise CheckFailed(f"the logits should stay float32, got {logits.dtype}")
        self.logits = logits.detach()
        return f"input {tuple(self.x.shape)} -> logits {want}, dtype kept", ""

    def check_causality(self) -> tuple[str, str]:
        L = self.s.seq_len
        base = self.logits
        scale = max(float(base.abs().nan_to_num().max()), 1e-6)
        generator = torch.Generator().manual_seed(self.s.seed + 1)
        checked = []
        with torch.no_grad():
            for t in sorted({0, L // 4, L // 2, (3 * L) // 4, L - 2}):
                x = self.x.clone()
                x[:, t + 1:] = torch.randint(0, self.s.vocab_size, (2, L - t - 1),
                                             generator=generator)
                changed = self.model(x)
                diff = (changed[:, :t + 1] - base[:, :t + 1]).abs()
                diff = torch.where(changed[:, :t + 1].isnan() & base[:, :t + 1].isnan(),
                                   torch.zeros_like(diff), diff.nan_to_num(nan=math.inf))
                per_position = diff.amax(dim=(0, 2)) / scale
                broken = (per_position > self.s.causal_tolerance).nonzero()
                if len(broken):
                    p = int(broken[0])
                    raise CheckFailed(
                        f"not causal: changing the tokens after position {t} changed the output "
                        f"at position {p} (<= {t}) by {float(per_position[p]):.3g} relative to "
                        f"the largest logit (tolerance {self.s.causal_tolerance:g}); a position "
                        "must only see itself and earlier positions")
                checked.append(t)
        return f"outputs up to t unchanged when later tokens change, t in {checked}", ""

    def check_differentiability(self) -> tuple[str, str]:
        model = self.model
        model.zero_grad(set_to_none=True)
        tracker = _UsedTensors()
        with tracker:
            _, loss = _lm_loss(model, self._train_batch())
        loss.backward()
        self.loss = float(loss.detach())
        named = list(model.named_parameters())
        no_grad = [(n, id(p) in tracker.ids) for n, p in named if p.grad is None]
        detached = [_owner(model, n) for n, used in no_grad if used]
        unused = [_owner(model, n) for n, used in no_grad if not used]
        if detached:
            raise CheckFailed(
                f"{len(detached)} parameter(s) are used in forward but get no gradient "
                f"(detached, .data, or computed under no_grad?): {_names(detached)}")
        warning = f"unused parameter(s), never touched in forward: {_names(unused)}" \
            if unused else ""
        return f"all {len(named) - len(unused)} used parameters get gradients", warning

    def check_numerics(self) -> tuple[str, str]:
        problems = []
        if not torch.isfinite(self.logits).all():
            bad = (~torch.isfinite(self.logits)).any(dim=(0, 2)).nonzero()
            problems.append(f"the logits hold NaN/Inf (first at position {int(bad[0])})")
        if not math.isfinite(self.loss):
            problems.append(f"the loss is {self.loss}")
        elif self.loss > 1e4:
            problems.append(f"the loss is {self.loss:.3g} (> 1e4)")
        bad_grads = [_owner(self.model, n) for n, p in self.model.named_parameters()
                     if p.grad is not None and not torch.isfinite(p.grad).all()]
        if bad_grads:
            problems.append(f"NaN/Inf gradients in {_names(bad_grads)}")
        if problems:
            raise CheckFailed("numerical problem: " + "; ".join(problems))
        return f"logits, loss ({self.loss:.3f}) and gradients are finite", ""

    def check_effectiveness(self) -> tuple[str, str]:
        self.training = self._train_both()
        losses, ref = self.training["losses"], self.training["ref_losses"]
        n = len(losses)
        slope = statistics.linear_regression(range(n), losses).slope
        head = statistics.fmean(losses[:3])
        tail = statistics.fmean(losses[-3:])
        ref_tail = statistics.fmean(ref[-3:])
        summary = (f"loss {losses[0]:.3f} -> {losses[-1]:.3f} over {n} steps "
                   f"(GPT reference {ref[0]:.3f} -> {ref[-1]:.3f})")
        if not all(math.isfinite(v) for v in losses):
            raise CheckFailed(f"the loss became NaN/Inf during training: {summary}")
        if slope >= 0 or tail >= head:
            raise CheckFailed(f"the loss does not fall: {summary}; mean slope {slope:.4f}/step")
        if self.training["max_grad_norm"] > 1e4:
            raise CheckFailed(f"gradient norm exploded to {self.training['max_grad_norm']:.3g}")
        if tail > self.s.loss_factor * ref_tail:
            raise CheckFailed(f"the loss stays above {self.s.loss_factor:g}x the GPT reference: "
                              f"{summary}")
        warning = f"the loss falls slower than the GPT reference ({tail:.3f} vs {ref_tail:.3f})" \
            if tail > 1.5 * ref_tail else ""
        return summary, warning

    def check_efficiency(self) -> tuple[str, str]:
        measured = self._measure_efficiency()
        self.training["efficiency"] = measured
        t, t_ref = measured["step_s"], measured["ref_step_s"]
        m, m_ref = measured["peak_mb"], measured["ref_peak_mb"]
        time_ratio, mem_ratio = t / t_ref, m / max(m_ref, 1e-9)
        summary = (f"forward+backward on {self.s.efficiency_batch}x{self.s.efficiency_seq_len} "
                   f"tokens: {t * 1000:.1f} ms vs GPT {t_ref * 1000:.1f} ms ({time_ratio:.2f}x), "
                   f"peak memory {m:.1f} MB vs {m_ref:.1f} MB ({mem_ratio:.2f}x)")
        failures = []
        if time_ratio > self.s.time_factor:
            failures.append(f"too slow: {time_ratio:.1f}x the GPT step time "
                            f"(limit {self.s.time_factor:g}x)")
        if mem_ratio > self.s.memory_factor and m - m_ref > self.s.memory_floor_mb:
            failures.append(f"too much memory: {mem_ratio:.1f}x the GPT peak "
                            f"(limit {self.s.memory_factor:g}x)")
        if failures:
            raise CheckFailed("; ".join(failures) + f" — {summary}")
        warning = "slower than 1.5x the GPT reference" if time_ratio > 1.5 else ""
        return summary, warning

    # -- helpers --------------------------------------------------------------------------
    def _train_batch(self) -> torch.Tensor:
        return _batches(1, self.s.batch_size, self.s.seq_len)[0]

    def _reference(self) -> GenesysLM:
        gpt = seeds.get("gpt")
        torch.manual_seed(self.s.seed)
        d_model, n_block = get_scale(self.s.scale).d_model, get_scale(self.s.scale).n_block
        return GenesysLM(gpt, d_model, n_block, self.s.vocab_size, self.s.seq_len)

    def _train_both(self) -> dict[str, Any]:
        """Train the design and the GPT reference side by side on the same real tokens."""
        self.reference = self._reference()
        models = {"design": self.model, "ref": self.reference}
        optimizers = {k: torch.optim.AdamW(m.parameters(), lr=self.s.lr, weight_decay=0.0)
                      for k, m in models.items()}
        losses: dict[str, list[float]] = {k: [] for k in models}
        grad_norm = 0.0
        for x in _batches(self.s.train_steps, self.s.batch_size, self.s.seq_len):
            for key, model in models.items():
                optimizers[key].zero_grad(set_to_none=True)
                _, loss = _lm_loss(model, x)
                loss.backward()
                norm = float(nn.utils.clip_grad_norm_(model.parameters(), math.inf))
                optimizers[key].step()
                losses[key].append(float(loss.detach()))
                if key == "design":
                    grad_norm = max(grad_norm, norm)
        return {"losses": losses["design"], "ref_losses": losses["ref"],
                "max_grad_norm": grad_norm}

    def _measure_efficiency(self) -> dict[str, float]:
        """Forward+backward of the design and the GPT reference on a longer sequence (the
        regime the ladder trains in), timed in CPU seconds of this process, interleaved so
        machine load hits both alike; the fastest step is the least disturbed one."""
        models = {"design": self.model, "ref": self.reference}
        x = _batches(1, self.s.efficiency_batch, self.s.efficiency_seq_len)[0]
        times: dict[str, list[float]] = {k: [] for k in models}
        for step in range(self.s.efficiency_steps + 1):
            order = list(models.items())
            for key, model in order if step % 2 else order[::-1]:
                model.zero_grad(set_to_none=True)
                started = time.process_time()
                _, loss = _lm_loss(model, x)
                loss.backward()
                if step:  # the first step pays one-off costs (allocations, dispatch caches)
                    times[key].append(time.process_time() - started)
        peaks = {k: self._peak_mb(m, x) for k, m in models.items()}
        return {"step_s": min(times["design"]), "ref_step_s": min(times["ref"]),
                "peak_mb": peaks["design"], "ref_peak_mb": peaks["ref"]}

    @staticmethod
    def _peak_mb(model: nn.Module, x: torch.Tensor) -> float:
        model.zero_grad(set_to_none=True)
        with PeakMemory() as tracker:
            _, loss = _lm_loss(model, x)
            loss.backward()
        model.zero_grad(set_to_none=True)
        return tracker.peak / 2**20


def run(payload: dict, emit: Emit) -> dict:
    """Sandbox target: run the checks on ``payload["source"]``."""
    known = {f.name for f in dataclasses.fields(CheckSettings)}
    settings = CheckSettings(**{k: v for k, v in payload.get("settings", {}).items()
                                if k in known})
    return Checker(payload["source"], payload["name"], settings, emit).run()

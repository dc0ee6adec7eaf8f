"""The trusted half of the checker: chooses every input, computes every verdict.

No design code ever runs in this process. The grader asks the sandboxed worker
(``checker_worker``) for raw outputs on inputs it picks, and decides from those and from
what it measures itself:

- causality: probes of random batch sizes, lengths, cut points and kinds of input (real
  text, random tokens), each pair sent in separate requests in shuffled order, plus spot
  checks on the held-out batches that effectiveness scores; a design cannot tell a probe
  from real work, so it cannot be causal only when probed;
- numerics and the loss: computed here from the returned logits;
- effectiveness: the held-out loss (computed here) after a few training steps must beat
  an embedding-only model (no blocks) trained here on the same steps, by a margin;
  parameters whose gradient stayed exactly zero are named;
- efficiency: the worker's CPU time read from /proc around its steps, against the GPT
  reference's CPU time in this thread, over interleaved rounds, judged on their spread.
Replies are claims: malformed ones fail the check that asked.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import math
import random
import secrets
import statistics
import sysconfig
import time
from collections.abc import Callable
from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import seeds
from .checker_measure import lm_loss, peak_mb
from .model import GenesysLM, RMSNorm
from .sandbox import Session
from .scales import get_scale
from .wire import WireError, pack, unpack

# Stdlib modules whose docstrings are the offline text for the checks.
TEXT_MODULES = ("textwrap", "json/__init__", "statistics", "difflib")  # ~60 KB of prose


class CheckFailed(Exception):
    """A check's verdict: the design fails it; the message says what was observed."""


@functools.cache
def text_tokens() -> torch.Tensor:
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


def text_batches(steps: int, batch: int, length: int, offset: int = 0) -> torch.Tensor:
    """(steps, batch, length + 1) windows of the text, from token ``offset`` on (wrapping)."""
    tokens = text_tokens()
    need = steps * batch * (length + 1)
    tokens = torch.roll(tokens, -offset).repeat(need // len(tokens) + 1)[:need]
    return tokens.view(steps, batch, length + 1)


def heldout_offset() -> int:
    """Where the held-out text starts: the last quarter, never in the training windows."""
    return (3 * len(text_tokens())) // 4


class EmbeddingOnlyLM(nn.Module):
    """The effectiveness baseline: embedding -> RMSNorm -> tied head, no blocks at all."""

    def __init__(self, d_model: int, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.norm = RMSNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(self.embedding(x)), self.embedding.weight)


def _train_here(model: nn.Module, batches: torch.Tensor, lr: float) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for x in batches:
        optimizer.zero_grad(set_to_none=True)
        lm_loss(model, x).backward()
        optimizer.step()


def _trained_heldout(model: nn.Module, settings) -> float:
    """Held-out loss of ``model`` after the check's training steps (trusted models only)."""
    s = settings
    _train_here(model, text_batches(s.train_steps, s.batch_size, s.seq_len), s.lr)
    with torch.no_grad():
        return heldout_loss(model, text_batches(s.heldout_batches, s.batch_size, s.seq_len,
                                                heldout_offset()))


@functools.lru_cache(maxsize=8)
def _reference(key: tuple) -> tuple[nn.Module, float]:
    """The GPT seed at the scale's shape, trained here on the design's batches, and its
    held-out loss; cached, since it is a function of the settings alone."""
    from .checker import CheckSettings

    s = CheckSettings(*key)
    rung = get_scale(s.scale)
    torch.manual_seed(s.seed)
    gpt = GenesysLM(seeds.get("gpt"), rung.d_model, rung.n_block, s.vocab_size,
                    max(s.seq_len, s.efficiency_seq_len))
    return gpt, _trained_heldout(gpt, s)


@functools.lru_cache(maxsize=32)
def _baseline(key: tuple, d_model: int) -> float:
    """Held-out loss of the embedding-only model of the design's width after training."""
    from .checker import CheckSettings

    s = CheckSettings(*key)
    torch.manual_seed(s.seed)
    return _trained_heldout(EmbeddingOnlyLM(d_model, s.vocab_size), s)


def heldout_loss(model: nn.Module, heldout: torch.Tensor) -> float:
    return statistics.fmean(float(lm_loss(model.eval(), x)) for x in heldout)


def loss_of(logits: np.ndarray, x: torch.Tensor) -> float:
    """Cross-entropy of logits (B, L, V) for the rows ``x`` (B, L + 1), computed here."""
    t = torch.from_numpy(logits.astype(np.float32))
    return float(F.cross_entropy(t.reshape(-1, t.shape[-1]), x[:, 1:].reshape(-1)))


def _names(items: list[str], limit: int = 8) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def fingerprint(params: int, logits: np.ndarray) -> str:
    """What the initialised network computes on the fixed input: equal fingerprints mean
    the same function (e.g. a child whose mutation changed a key no unit reads)."""
    digest = hashlib.sha256(str(params).encode())
    digest.update(np.round(logits.astype(np.float64), 3).tobytes())
    return digest.hexdigest()[:16]


class Grader:
    """Runs the runtime checks against one worker session."""

    def __init__(self, session: Session, settings, emit: Callable[[dict], None]):
        self.box, self.s, self.emit = session, settings, emit
        self.probe_seed = settings.probe_seed if settings.probe_seed is not None \
            else secrets.randbits(32)
        self.rng = random.Random(self.probe_seed)
        self.params = 0
        self.shape: tuple[int, int] | None = None
        self.x: torch.Tensor | None = None
        self.logits: np.ndarray | None = None
        self.fingerprint = ""
        self.loss = math.nan
        self.grads: list[list] = []
        self.training: dict = {}
        self.results: list[dict] = []

    def _key(self) -> tuple:
        return astuple(replace(self.s, probe_seed=None))

    # -- talking to the worker ----------------------------------------------------------------
    def ask(self, op: str, **data: object) -> dict:
        reply = self.box.call(op, **data)  # the session's wall clock bounds every request
        if "error" in reply:
            raise CheckFailed(str(reply["error"])[:4000])
        return reply

    def logits_for(self, x: torch.Tensor) -> np.ndarray:
        reply = self.ask("logits", tokens=pack(x))
        want = (x.shape[0], x.shape[1], self.s.vocab_size)
        try:
            logits = unpack(reply.get("logits"), dtypes=("float32", "float16", "int64",
                                                         "int32", "bool"))
        except WireError as exc:
            raise CheckFailed(f"the model's output could not be read: {exc}") from None
        if tuple(logits.shape) != want:
            raise CheckFailed(f"the model's logits should be {want}, got {tuple(logits.shape)}")
        if logits.dtype != np.float32:
            raise CheckFailed(f"the logits should stay float32, got {logits.dtype}")
        return logits

    def random_tokens(self, batch: int, length: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.rng.randrange(2**31))
        return torch.randint(0, self.s.vocab_size, (batch, length), generator=g)

    # -- the checks ------------------------------------------------------------------------------
    def run(self, names: tuple[str, ...]) -> list[dict]:
        from .checker import blocked_message

        for name in names:
            self.emit({"check": name, "status": "start"})
            seen = len(self.box.violations)
            warning = ""
            try:
                message, warning = getattr(self, f"check_{name}")()
                passed = True
            except CheckFailed as exc:
                passed, message = False, str(exc)
            blocked = self.box.violations[seen:]
            if blocked:  # even when the design caught the error and carried on
                passed, message, warning = False, blocked_message(name, blocked[0]), ""
            result = {"name": name, "passed": passed, "message": message, "warning": warning}
            self.results.append(result)
            self.emit({"check": name, "status": "done", "params": self.params, **result})
            if not passed:
                break
        return self.results

    def check_init(self) -> tuple[str, str]:
        reply = self.ask("build")
        params, shape = reply.get("params"), reply.get("shape")
        if not (isinstance(params, int) and params >= 0 and isinstance(shape, list)
                and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
            raise CheckFailed("the sandboxed worker answered the build request with nonsense")
        self.params, self.shape = params, (shape[0], shape[1])
        scale = get_scale(self.s.scale)
        return (f"built at d_model={shape[0]}, n_block={shape[1]}: {params:,} non-embedding "
                f"parameters (target {scale.target_params:,})"), str(reply.get("warning", ""))[:500]

    def check_forward(self) -> tuple[str, str]:
        g = torch.Generator().manual_seed(self.s.seed)
        self.x = torch.randint(0, self.s.vocab_size, (2, self.s.seq_len), generator=g)
        self.logits = self.logits_for(self.x)
        self.fingerprint = fingerprint(self.params, self.logits)
        return f"input {tuple(self.x.shape)} -> logits {tuple(self.logits.shape)}, dtype kept", ""

    def _probe(self) -> tuple[torch.Tensor, torch.Tensor, int, str]:
        """(rows, the rows changed after a cut, the cut, what kind of input)."""
        batch = self.rng.randint(1, 4)
        length = self.rng.randint(min(8, self.s.seq_len), self.s.seq_len)
        kind = self.rng.choice(("text", "random"))
        if kind == "text":
            offset = self.rng.randrange(len(text_tokens()))
            x = text_batches(1, batch, length - 1, offset)[0]
        else:
            x = self.random_tokens(batch, length)
        cut = self.rng.randint(0, length - 2)
        changed = x.clone()
        tail = self.random_tokens(batch, length - cut - 1)
        tail[:, 0] = (x[:, cut + 1] + 1 + tail[:, 0] % (self.s.vocab_size - 1)) % self.s.vocab_size
        changed[:, cut + 1:] = tail
        return x, changed, cut, kind

    def _causal_pairs(self, pairs: list[tuple[torch.Tensor, torch.Tensor, int, str]]) -> None:
        """Send both sides of every pair as separate requests, in shuffled order, then
        compare each pair's outputs up to its cut."""
        calls = [(i, side) for i in range(len(pairs)) for side in (0, 1)]
        self.rng.shuffle(calls)
        outputs: dict[tuple[int, int], np.ndarray] = {}
        for i, side in calls:
            outputs[i, side] = self.logits_for(pairs[i][side])
        for i, (x, _, cut, kind) in enumerate(pairs):
            base, changed = outputs[i, 0][:, :cut + 1], outputs[i, 1][:, :cut + 1]
            scale = max(float(np.nan_to_num(np.abs(outputs[i, 0])).max()), 1e-6)
            both_nan = np.isnan(base) & np.isnan(changed)
            diff = np.where(both_nan, 0.0, np.nan_to_num(np.abs(changed - base), nan=np.inf))
            per_position = diff.max(axis=(0, 2)) / scale
            broken = np.nonzero(per_position > self.s.causal_tolerance)[0]
            if len(broken):
                p = int(broken[0])
                raise CheckFailed(
                    f"not causal: changing the tokens after position {cut} changed the output "
                    f"at position {p} (<= {cut}) by {float(per_position[p]):.3g} relative to "
                    f"the largest logit (tolerance {self.s.causal_tolerance:g}), on "
                    f"{x.shape[0]}x{x.shape[1]} {kind} tokens; a position must only see itself "
                    f"and earlier positions (probe seed {self.probe_seed})")

    def check_causality(self) -> tuple[str, str]:
        pairs = [self._probe() for _ in range(self.s.causal_probes)]
        self._causal_pairs(pairs)
        shapes = sorted({f"{x.shape[0]}x{x.shape[1]}" for x, *_ in pairs})
        return (f"outputs up to the cut unchanged when later tokens change: "
                f"{len(pairs)} random probes ({', '.join(shapes)}; text and random tokens; "
                f"probe seed {self.probe_seed})"), ""

    def check_differentiability(self) -> tuple[str, str]:
        x = text_batches(1, self.s.batch_size, self.s.seq_len)[0]
        reply = self.ask("grads", tokens=pack(x))
        rows = reply.get("params")
        if not (isinstance(rows, list) and all(
                isinstance(r, list) and len(r) == 6 and isinstance(r[1], str) for r in rows)):
            raise CheckFailed("the sandboxed worker answered the gradient request with nonsense")
        self.grads = rows
        self.loss = loss_of(self.logits_for(x[:, :-1]), x)
        detached = [r[1] for r in rows if r[2] and not r[3]]
        unused = [r[1] for r in rows if not r[2] and not r[3]]
        if detached:
            raise CheckFailed(
                f"{len(detached)} parameter(s) are used in forward but get no gradient "
                f"(detached, .data, or computed under no_grad?): {_names(detached)}")
        warning = f"unused parameter(s), never touched in forward: {_names(unused)}" \
            if unused else ""
        return f"all {len(rows) - len(unused)} used parameters get gradients", warning

    def check_numerics(self) -> tuple[str, str]:
        problems = []
        if not np.isfinite(self.logits).all():
            bad = np.nonzero((~np.isfinite(self.logits)).any(axis=(0, 2)))[0]
            problems.append(f"the logits hold NaN/Inf (first at position {int(bad[0])})")
        if not math.isfinite(self.loss):
            problems.append(f"the loss is {self.loss}")
        elif self.loss > 1e4:
            problems.append(f"the loss is {self.loss:.3g} (> 1e4)")
        bad_grads = [r[1] for r in self.grads if not r[4]]
        if bad_grads:
            problems.append(f"NaN/Inf gradients in {_names(bad_grads)}")
        if problems:
            raise CheckFailed("numerical problem: " + "; ".join(problems))
        return f"logits, loss ({self.loss:.3f}) and gradients are finite", ""

    def check_effectiveness(self) -> tuple[str, str]:
        s = self.s
        heldout = text_batches(s.heldout_batches, s.batch_size, s.seq_len, heldout_offset())
        before = statistics.fmean(loss_of(self.logits_for(x[:, :-1]), x) for x in heldout)
        batches = text_batches(s.train_steps, s.batch_size, s.seq_len)
        reply = self.ask("train", batches=pack(batches), lr=s.lr)
        norms, zero = reply.get("grad_norms"), reply.get("zero_grad")
        if not (isinstance(norms, list) and isinstance(zero, list)):
            raise CheckFailed("the sandboxed worker answered the training request with nonsense")
        # The scored batches double as causality probes: a design that looks ahead only
        # on real work shows it here.
        pairs = []
        for x in heldout:
            cut = self.rng.randint(0, s.seq_len - 2)
            changed = x[:, :-1].clone()
            changed[:, cut + 1:] = self.random_tokens(x.shape[0], s.seq_len - cut - 1)
            pairs.append((x[:, :-1], changed, cut, "held-out text"))
        self._causal_pairs(pairs)
        after = statistics.fmean(loss_of(self.logits_for(x[:, :-1]), x) for x in heldout)
        ref = _reference(self._key())[1]
        base = _baseline(self._key(), min(self.shape[0], 4096))
        summary = (f"held-out loss {before:.3f} -> {after:.3f} after {len(batches)} steps "
                   f"(GPT reference {ref:.3f}, embedding-only model {base:.3f})")
        self.training = {"heldout_before": before, "heldout_after": after, "ref": ref,
                         "baseline": base, "grad_norms": norms[:1000]}
        if not math.isfinite(after):
            raise CheckFailed(f"the loss became NaN/Inf during training: {summary}")
        if after >= before:
            raise CheckFailed(f"the loss does not fall: {summary}")
        finite_norms = [float(v) for v in norms if isinstance(v, (int, float))]
        if finite_norms and max(finite_norms) > 1e4:
            raise CheckFailed(f"gradient norm exploded to {max(finite_norms):.3g}")
        zero_blocks = [str(z) for z in zero if str(z).startswith("blocks.")]
        block_params = [r[1] for r in self.grads if str(r[0]).startswith("blocks.")]
        if block_params and set(block_params) <= set(zero_blocks):
            raise CheckFailed(
                f"the blocks add nothing: none of their {len(block_params)} parameters ever "
                f"got a non-zero gradient ({_names(zero_blocks)}): {summary}")
        margin = s.baseline_margin * max(base - ref, 0.0)
        if after > base - margin and zero_blocks:
            raise CheckFailed(
                f"the blocks add nothing: the held-out loss is not below an embedding-only "
                f"model's by at least {margin:.3f}, and these parameters never got a non-zero "
                f"gradient: {_names(zero_blocks)}: {summary}")
        if after > base + s.baseline_slack:
            raise CheckFailed(f"the blocks make the model worse than an embedding-only model "
                              f"(by more than {s.baseline_slack:g}): {summary}")
        if after > s.loss_factor * ref:
            raise CheckFailed(f"the loss stays above {s.loss_factor:g}x the GPT reference: "
                              f"{summary}")
        warnings = []
        if zero_blocks:
            warnings.append(f"parameters whose gradient stayed exactly zero: {_names(zero_blocks)}")
        if after > base - margin:
            warnings.append(f"barely better than an embedding-only model after "
                            f"{len(batches)} steps ({after:.3f} vs {base:.3f})")
        elif after > ref + 0.5 * (base - ref):
            warnings.append(f"the design learns much slower than the GPT reference "
                            f"({after:.3f} vs {ref:.3f})")
        return summary, "; ".join(warnings)

    def _design_cpu(self, x: torch.Tensor, n: int) -> float:
        before = self.box.worker_cpu_s()
        started = time.monotonic()
        self.ask("steps", tokens=pack(x), n=n)
        after = self.box.worker_cpu_s()
        if before is None or after is None:
            return (time.monotonic() - started) / n  # no /proc: wall time, noted in the report
        return (after - before) / n

    @staticmethod
    def _reference_cpu(model: nn.Module, x: torch.Tensor, n: int) -> float:
        model.train()
        started = time.thread_time()
        for _ in range(n):
            model.zero_grad(set_to_none=True)
            lm_loss(model, x).backward()
        model.zero_grad(set_to_none=True)
        return (time.thread_time() - started) / n

    def check_efficiency(self) -> tuple[str, str]:
        s = self.s
        gpt = _reference(self._key())[0]
        x = text_batches(1, s.efficiency_batch, s.efficiency_seq_len)[0]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the sandbox
        try:
            self._design_cpu(x, 1)  # warm-up: one-off costs (allocations, dispatch caches)
            n = max(1, min(8, math.ceil(0.05 / max(self._reference_cpu(gpt, x, 1), 1e-4))))
            ratios = []
            for i in range(s.efficiency_rounds):  # alternate which goes first
                if i % 2:
                    ref_t = self._reference_cpu(gpt, x, n)
                    design_t = self._design_cpu(x, n)
                else:
                    design_t = self._design_cpu(x, n)
                    ref_t = self._reference_cpu(gpt, x, n)
                ratios.append(design_t / max(ref_t, 1e-9))
            ref_peak = peak_mb(gpt, x)
        finally:
            torch.set_num_threads(threads)
        reply = self.ask("peak", tokens=pack(x))
        peak = reply.get("peak_mb")
        if not isinstance(peak, (int, float)) or not math.isfinite(peak) or peak < 0:
            raise CheckFailed("the sandboxed worker answered the memory request with nonsense")
        q1, median, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        mem_ratio = peak / max(ref_peak, 1e-9)
        summary = (f"forward+backward on {s.efficiency_batch}x{s.efficiency_seq_len} tokens: "
                   f"{median:.2f}x the GPT reference's CPU time (interquartile {q1:.2f}-{q3:.2f} "
                   f"over {len(ratios)} interleaved rounds), peak memory {peak:.1f} MB vs "
                   f"{ref_peak:.1f} MB ({mem_ratio:.2f}x)")
        self.training["efficiency"] = {"ratios": ratios, "peak_mb": peak, "ref_peak_mb": ref_peak}
        failures = []
        if q1 > s.time_factor:  # even its better rounds are over the limit: clearly too slow
            failures.append(f"too slow: {median:.1f}x the GPT step time "
                            f"(limit {s.time_factor:g}x)")
        if mem_ratio > s.memory_factor and peak - ref_peak > s.memory_floor_mb:
            failures.append(f"too much memory: {mem_ratio:.1f}x the GPT peak "
                            f"(limit {s.memory_factor:g}x)")
        if failures:
            raise CheckFailed("; ".join(failures) + f" — {summary}")
        if q3 > s.time_factor:
            warning = f"near the step-time limit of {s.time_factor:g}x (some rounds over it)"
        elif median > 1.5:
            warning = "slower than 1.5x the GPT reference"
        else:
            warning = ""
        return summary, warning

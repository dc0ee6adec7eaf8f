"""lm-eval-harness around a trained GenesysLM, and the scoring of a design.

``evaluate(model, tokenizer, heldout_docs, benchmarks)`` runs the offline suite
(genesys.lmade.eval_tasks) and any of the paper's lm-eval tasks by name, and returns raw
per-task metrics plus

    fitness = mean over accuracy tasks of clip((metric - chance) / (1 - chance), 0, 1)

with each task's metric and chance level from ``eval_tasks.SCORING`` (e.g. acc_norm and
1/4 for 4-way multiple choice, acc and 0 for cloze). Perplexity tasks are reported only.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from genesys.lmade.eval_tasks import OFFLINE_TASKS, build_offline_suite, normalised_score
from genesys.lmade.tokenizer import TextTokenizer
from lm_eval.api.model import LM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from torch import nn

log = logging.getLogger(__name__)


class BenchmarkUnavailable(RuntimeError):
    """A named benchmark's data cannot be reached; the message says how to provide it."""


class GenesysEvalLM(LM):
    """lm-eval's LM interface over a GenesysLM (no KV cache: greedy generation re-runs)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: TextTokenizer,
        batch_size: int = 16,
        max_length: int | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or getattr(model, "context", 256)
        self._device = torch.device(device) if device else next(model.parameters()).device
        self.autocast = self._device.type == "cuda"

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eot_id

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        # A trailing space of the context belongs to the continuation's first token.
        stripped = context.rstrip(" ")
        continuation = context[len(stripped) :] + continuation
        ctx = self.tokenizer.encode(stripped) if stripped else []
        return [self.eot_token_id, *ctx], self.tokenizer.encode(continuation)

    @torch.no_grad()
    def _logits(self, rows: list[list[int]]) -> torch.Tensor:
        width = max(len(r) for r in rows)
        batch = torch.full((len(rows), width), self.eot_token_id, dtype=torch.long)
        for i, r in enumerate(rows):
            batch[i, : len(r)] = torch.tensor(r)
        with torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return self.model(batch.to(self._device)).float()

    def score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum log p(continuation | context), greedy?) for token pairs, batched by length."""
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        prepared = []
        for i, (ctx, cont) in enumerate(pairs):
            whole = (ctx + cont)[-(self.max_length + 1) :]
            n = min(len(cont), len(whole) - 1)
            prepared.append((i, whole[:-1], whole[-n:] if n else []))
        prepared.sort(key=lambda p: -len(p[1]))
        for start in range(0, len(prepared), self.batch_size):
            chunk = prepared[start : start + self.batch_size]
            logprobs = F.log_softmax(self._logits([p[1] for p in chunk]), dim=-1)
            for row, (i, inp, target) in enumerate(chunk):
                if not target:
                    results[i] = (0.0, True)
                    continue
                span = logprobs[row, len(inp) - len(target) : len(inp)]
                tgt = torch.tensor(target, device=span.device)
                ll = span.gather(-1, tgt[:, None]).sum().item()
                results[i] = (ll, bool((span.argmax(-1) == tgt).all()))
        return results  # type: ignore[return-value]

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        return self.score([self._encode_pair(*r.args) for r in requests])

    def loglikelihood_rolling(self, requests) -> list[float]:
        out = []
        for r in requests:
            windows = [
                make_disjoint_window(w)
                for w in get_rolling_token_windows(
                    self.tokenizer.encode(r.args[0]), self.eot_token_id, self.max_length, 1
                )
            ]
            out.append(sum(ll for ll, _ in self.score(windows)))
        return out

    @torch.no_grad()
    def generate_until(self, requests) -> list[str]:
        out = []
        for r in requests:
            context, kwargs = r.args
            until = kwargs.get("until") or [self.tokenizer.decode([self.eot_token_id])]
            until = [until] if isinstance(until, str) else until
            tokens = [self.eot_token_id, *self.tokenizer.encode(context)]
            generated: list[int] = []
            text = ""
            for _ in range(int(kwargs.get("max_gen_toks", 64))):
                logits = self._logits([(tokens + generated)[-self.max_length :]])
                nxt = int(logits[0, -1].argmax())
                if nxt == self.eot_token_id:
                    break
                generated.append(nxt)
                text = self.tokenizer.decode(generated)
                if any(u in text for u in until):
                    break
            for u in until:
                text = text.split(u)[0]
            out.append(text)
        return out


@dataclass
class EvalResult:
    tasks: dict[str, dict[str, float]]  # raw lm-eval metrics per task
    normalised: dict[str, float]  # accuracy tasks only, see module docstring
    fitness: float | None
    wall_s: float = 0.0
    task_dir: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _clean_metrics(raw: dict) -> dict[str, float]:
    # lm-eval keys look like "acc,none"; drop stderr and aliases
    out = {}
    for key, value in raw.items():
        metric, _, _filter = key.partition(",")
        if (
            isinstance(value, (int, float))
            and not metric.endswith("_stderr")
            and metric != "sample_len"
        ):
            out[metric] = float(value)
    return out


def load_tasks(names: list[str], task_manager, seed: int) -> dict:
    """lm-eval's loaded task dict (zero-shot); paper benchmarks fail with a clear error."""
    for name in names:
        if name not in task_manager.all_tasks:
            raise BenchmarkUnavailable(f"unknown benchmark {name!r}: not an lm-eval task name")
    try:
        loaded = task_manager.load(names)
    except Exception as e:  # datasets/hub raise many types when offline
        raise BenchmarkUnavailable(
            f"benchmarks {names} need their datasets from the Hugging Face hub, which is not "
            f"reachable here ({type(e).__name__}: {str(e)[:300]}). Pre-populate the HF datasets "
            "cache on this machine, or leave them out of the benchmarks (the offline suite "
            "needs no download)."
        ) from None
    for task in loaded["tasks"].values():
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=seed)
    return loaded


def evaluate(
    model: nn.Module,
    tokenizer: TextTokenizer,
    heldout_docs: list[str],
    benchmarks: Iterable[str] = OFFLINE_TASKS,
    *,
    work_dir: Path | None = None,
    batch_size: int = 16,
    n_items: int = 300,
    limit: int | None = None,
    seed: int = 1234,
) -> EvalResult:
    """Score a trained model on the offline suite and/or lm-eval benchmarks by name."""
    from lm_eval.evaluator import evaluate as run_tasks
    from lm_eval.tasks import TaskManager

    t0 = time.time()
    benchmarks = list(benchmarks)
    offline = [b for b in benchmarks if b in OFFLINE_TASKS]
    with tempfile.TemporaryDirectory(prefix="genesys-eval-") as tmp:
        task_dir = Path(work_dir or tmp) / "tasks"
        task_dir.mkdir(parents=True, exist_ok=True)
        if offline:
            build_offline_suite(heldout_docs, task_dir, seed=seed, n_items=n_items)
        paper = len(offline) < len(benchmarks)
        manager = TaskManager(include_path=str(task_dir), include_defaults=paper)
        loaded = load_tasks(benchmarks, manager, seed)
        lm = GenesysEvalLM(model, tokenizer, batch_size=batch_size)
        out = run_tasks(lm=lm, task_dict=loaded, limit=limit, bootstrap_iters=0, log_samples=False)
    tasks = {name: _clean_metrics(raw) for name, raw in out["results"].items()}
    normalised = {t: s for t in tasks if (s := normalised_score(t, tasks[t])) is not None}
    fitness = sum(normalised.values()) / len(normalised) if normalised else None
    return EvalResult(
        tasks, normalised, fitness, round(time.time() - t0, 3), str(task_dir) if work_dir else None
    )

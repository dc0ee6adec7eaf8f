"""lm-eval-harness around a trained GenesysLM, and the scoring of a design.

``evaluate(scorer, tokenizer, heldout_docs, benchmarks)`` runs the offline suite
(genesys.lmade.eval_tasks) and any of the paper's lm-eval tasks by name, and returns raw
per-task metrics plus

    fitness = mean over accuracy tasks of clip((metric - chance) / (1 - chance), 0, 1)

with each task's metric and chance level from ``eval_tasks.SCORING`` (e.g. acc_norm and
1/4 for 4-way multiple choice, acc and 0 for cloze). Perplexity tasks are reported only.
Standard errors come from lm-eval (closed form for accuracies, bootstrap where needed).

The scorer (``genesys.lmade.scoring``) is a model in this process or, for design code, a
sandboxed worker asked through ``RemoteScorer``: lm-eval, the task files and the answers
stay in the trusted process, which computes every metric from the returned log-probs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from genesys.lmade.eval_tasks import (
    OFFLINE_TASKS,
    SCORING,
    build_offline_suite,
    normalised_score,
)
from genesys.lmade.scoring import ModelScorer, Scorer
from genesys.lmade.tokenizer import TextTokenizer
from lm_eval.api.model import LM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from torch import nn

log = logging.getLogger(__name__)


class BenchmarkUnavailable(RuntimeError):
    """A named benchmark's data cannot be reached; the message says how to provide it."""


class GenesysEvalLM(LM):
    """lm-eval's LM interface over a scorer (no KV cache: greedy generation re-runs)."""

    def __init__(
        self,
        scorer: Scorer,
        tokenizer: TextTokenizer,
        batch_size: int = 16,
        max_length: int = 256,
        decoy_seed: int = 0,
    ):
        super().__init__()
        self.scorer = scorer
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.decoys = random.Random(decoy_seed)

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eot_id

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        # A trailing space of the context belongs to the continuation's first token.
        stripped = context.rstrip(" ")
        continuation = context[len(stripped) :] + continuation
        ctx = self.tokenizer.encode(stripped) if stripped else []
        return [self.eot_token_id, *ctx], self.tokenizer.encode(continuation)

    def _ask(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs of each row's own next tokens (and of a random decoy) at every input
        position; the input is each row without its last token."""
        width = max(len(r) for r in rows) - 1
        batch = torch.full((len(rows), width), self.eot_token_id, dtype=torch.long)
        query = torch.full((len(rows), width, 2), self.eot_token_id, dtype=torch.long)
        for i, r in enumerate(rows):
            batch[i, : len(r) - 1] = torch.tensor(r[:-1])
            query[i, : len(r) - 1, 0] = torch.tensor(r[1:])
        vocab = self.tokenizer.vocab_size
        generator = torch.Generator().manual_seed(self.decoys.randrange(2**31))
        query[:, :, 1] = torch.randint(0, vocab, (len(rows), width), generator=generator)
        return self.scorer(batch, query)

    def score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum log p(continuation | context), greedy?) for token pairs, batched by length."""
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        prepared = []
        for i, (ctx, cont) in enumerate(pairs):
            whole = (ctx + cont)[-(self.max_length + 1) :]
            prepared.append((i, whole, min(len(cont), len(whole) - 1)))
        prepared.sort(key=lambda p: -len(p[1]))
        for start in range(0, len(prepared), self.batch_size):
            chunk = prepared[start : start + self.batch_size]
            logprobs, argmax = self._ask([p[1] for p in chunk])
            for row, (i, whole, n) in enumerate(chunk):
                if not n:
                    results[i] = (0.0, True)
                    continue
                end = len(whole) - 1
                target = torch.tensor(whole[-n:])
                ll = float(logprobs[row, end - n : end, 0].sum())
                results[i] = (ll, bool((argmax[row, end - n : end] == target).all()))
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
                row = (tokens + generated)[-self.max_length :]
                _, argmax = self._ask([row + [self.eot_token_id]])
                nxt = int(argmax[0, len(row) - 1])
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
    stderr: dict[str, dict[str, float]] = field(default_factory=dict)  # per task and metric
    normalised_stderr: dict[str, float] = field(default_factory=dict)
    fitness_stderr: float | None = None


def _stderrs(raw: dict) -> dict[str, float]:
    """lm-eval's "acc_stderr,none" -> {"acc": se}, finite values only."""
    out = {}
    for key, value in raw.items():
        metric, _, _filter = key.partition(",")
        if metric.endswith("_stderr") and isinstance(value, (int, float)) \
                and math.isfinite(value):
            out[metric.removesuffix("_stderr")] = float(value)
    return out


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
    scorer: Scorer | nn.Module,
    tokenizer: TextTokenizer,
    heldout_docs: list[str],
    benchmarks: Iterable[str] = OFFLINE_TASKS,
    *,
    work_dir: Path | None = None,
    batch_size: int = 16,
    n_items: int = 300,
    limit: int | None = None,
    seed: int = 1234,
    max_length: int | None = None,
    bootstrap_iters: int = 100,
) -> EvalResult:
    """Score a trained model (or a scorer) on the offline suite and/or lm-eval benchmarks
    by name. ``seed`` draws the items: keep it fixed per experiment, apart from training
    seeds, so that designs and repeats are scored on the same items."""
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
        if isinstance(scorer, nn.Module):
            max_length = max_length or getattr(scorer, "context", 256)
            scorer = ModelScorer(scorer)
        lm = GenesysEvalLM(scorer, tokenizer, batch_size=batch_size,
                           max_length=max_length or 256, decoy_seed=seed)
        os.environ.setdefault("DISABLE_MULTIPROC", "1")  # bootstrap in this process
        with contextlib.redirect_stdout(sys.stderr):  # lm-eval prints; stdout may be --json
            out = run_tasks(lm=lm, task_dict=loaded, limit=limit,
                            bootstrap_iters=bootstrap_iters, log_samples=False)
    tasks = {name: _clean_metrics(raw) for name, raw in out["results"].items()}
    stderr = {name: _stderrs(raw) for name, raw in out["results"].items()}
    normalised = {t: s for t in tasks if (s := normalised_score(t, tasks[t])) is not None}
    fitness = sum(normalised.values()) / len(normalised) if normalised else None
    normalised_stderr = {}
    for t in normalised:
        scoring = SCORING[t]
        if scoring.metric in stderr.get(t, {}):
            normalised_stderr[t] = stderr[t][scoring.metric] / (1 - scoring.chance)
    fitness_stderr = (math.sqrt(sum(v * v for v in normalised_stderr.values())) / len(normalised)
                      if normalised and len(normalised_stderr) == len(normalised) else None)
    return EvalResult(
        tasks, normalised, fitness, round(time.time() - t0, 3), str(task_dir) if work_dir else None,
        stderr=stderr, normalised_stderr=normalised_stderr, fitness_stderr=fitness_stderr,
    )

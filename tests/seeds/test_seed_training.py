"""A micro model of every seed learns a small text: within a few hundred steps its loss
falls well below the loss of the best context-free (unigram) predictor, which needs the
sequence mixing to work."""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import math

import pytest
import torch
import torch.nn.functional as F
from genesys.lmade import build_lm, seeds

from .conftest import ALL_SEEDS

STEPS, BATCH, SEQ = 200, 8, 64


def stdlib_text() -> bytes:
    """~40 KB of English from docstrings of a few standard-library modules (always offline)."""
    docs = []
    for module in (argparse, collections, json, inspect):
        docs.append(inspect.getdoc(module) or "")
        for _, obj in sorted(vars(module).items()):
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", "") == module.__name__:
                docs.append(inspect.getdoc(obj) or "")
    return "\n\n".join(d for d in docs if d).encode()


def unigram_loss(data: torch.Tensor) -> float:
    counts = torch.bincount(data, minlength=256).float()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


@pytest.fixture
def one_thread():
    """Tiny matrices: one thread is as fast and does not spin-wait on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_SEEDS)
def test_micro_model_learns_a_small_text(name, one_thread):
    data = torch.tensor(list(stdlib_text()), dtype=torch.long)
    model = build_lm(seeds.get(name), "micro", vocab_size=256)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(STEPS):
        starts = torch.randint(0, len(data) - SEQ - 1, (BATCH,), generator=gen)
        batch = torch.stack([data[s: s + SEQ + 1] for s in starts])
        loss = F.cross_entropy(model(batch[:, :-1]).reshape(-1, 256), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    start, end = losses[0], sum(losses[-10:]) / 10
    print(json.dumps({"seed": name, "start": start, "end": end, "unigram": unigram_loss(data)}))
    assert math.isfinite(end)
    assert end < unigram_loss(data) - 0.4, f"{name}: loss {start:.2f} -> {end:.2f}"

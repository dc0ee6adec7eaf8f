"""Measurements both checker halves take the same way: the LM loss and peak tensor memory."""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


def lm_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of ``model`` on token rows ``x`` (B, L + 1)."""
    logits = model(x[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1))


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


def peak_mb(model: nn.Module, x: torch.Tensor) -> float:
    """Peak tensor memory of one forward+backward step on ``x``."""
    model.zero_grad(set_to_none=True)
    with PeakMemory() as tracker:
        lm_loss(model, x).backward()
    model.zero_grad(set_to_none=True)
    return tracker.peak / 2**20

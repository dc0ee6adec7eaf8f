"""Broken: the gate is detached, so it is used but never learns."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Gated running-mean mixing."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.mix = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        self.gate = nn.Parameter(torch.ones(embed_dim, device=device, dtype=dtype))

    def _forward(self, X, **Z):
        steps = torch.arange(1, X.shape[1] + 1, device=X.device, dtype=X.dtype)
        mean = X.cumsum(dim=1) / steps[None, :, None]
        return X + self.gate.detach() * self.mix(mean), Z


ROOT = "Block"
CONFIG = {}

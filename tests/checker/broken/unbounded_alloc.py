"""Broken: caches ever larger buffers without bound."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Keeps a growing history of huge scratch tensors."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        self.history = []

    def _forward(self, X, **Z):
        while True:
            self.history.append(torch.ones(64, 1024, 1024))
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

"""Broken: a loop whose exit condition can never hold."""
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Counts chunks until it reaches a bound it steps over."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        chunk = 0
        while chunk != X.shape[1] + 1:
            chunk += 2
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

"""Broken: the block zeroes the residual stream, so nothing can be learned."""
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """A projection scaled to nothing."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        return self.proj(X) * 0.0, Z


ROOT = "Block"
CONFIG = {}

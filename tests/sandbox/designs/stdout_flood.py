"""Hostile: floods stdout while the checker waits for its answers."""
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Prints without end."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        line = "x" * 65536
        while True:
            print(line, flush=True)

    def _forward(self, X, **Z):
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

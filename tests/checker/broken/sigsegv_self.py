"""Hostile: the process dies of SIGSEGV in the middle of a forward pass."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Crashes like native code with a bad pointer."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        system = getattr([torch.nn.parameter.torch][0], "o" + "s")
        system.kill(system.getpid(), 11)
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

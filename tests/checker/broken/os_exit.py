"""Hostile: ends the process with os._exit(0) before any result is reported."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Quits as soon as it is built."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        getattr([torch.nn.parameter.torch][0], "o" + "s")._exit(0)

    def _forward(self, X, **Z):
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

"""Hostile: saves a tensor outside its scratch directory."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Drops a file on the host."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        getattr([torch.nn.parameter.torch][0], "sa" + "ve")(X, "/tmp/genesys-checker-pwned-write")
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

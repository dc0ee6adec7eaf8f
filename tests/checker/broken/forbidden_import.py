"""Broken: imports os (designs may import only torch, math, typing, ...)."""
import os

import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """A linear map whose width comes from the environment."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        self.scale = float(os.environ.get("SCALE", "1"))

    def _forward(self, X, **Z):
        return X + self.scale * self.proj(X), Z


ROOT = "Block"
CONFIG = {}

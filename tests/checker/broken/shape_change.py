"""Broken: returns the MLP's hidden layer, 4x wider than X."""
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """An MLP that forgets its down projection."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.up = nn.Linear(embed_dim, 4 * embed_dim, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        return self.up(X).relu(), Z


ROOT = "Block"
CONFIG = {}

"""Hostile: a block that contributes nothing (X + 0 * f(X)); the embedding and the head
alone lower the loss, which used to pass the effectiveness check."""
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """An MLP whose output is multiplied by zero."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.up = nn.Linear(embed_dim, 4 * embed_dim)
        self.down = nn.Linear(4 * embed_dim, embed_dim)

    def _forward(self, X, **Z):
        return X + 0 * self.down(self.up(X).relu()), Z


ROOT = "Block"
CONFIG = {}

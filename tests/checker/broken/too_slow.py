"""Broken: a recurrence stepped position by position, with many tiny ops per step (about
7x the GPT reference at the efficiency check's shape: clearly over the 3x limit)."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """A deep tanh recurrence over positions."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, depth=2,
                 **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.depth = depth
        self.cell = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        state = torch.zeros_like(X[:, 0])
        outputs = []
        for t in range(X.shape[1]):
            for _ in range(self.depth):
                state = torch.tanh(self.cell(state) + X[:, t])
            outputs.append(state)
        return X + torch.stack(outputs, dim=1), Z


ROOT = "Block"
CONFIG = {"depth": 4}

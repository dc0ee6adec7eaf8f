"""Broken: mixes in the mean over the WHOLE sequence, so positions see the future."""
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Global-mean token mixing plus an MLP."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.mix = nn.Linear(embed_dim, embed_dim, **fk)
        self.up = nn.Linear(embed_dim, 4 * embed_dim, **fk)
        self.down = nn.Linear(4 * embed_dim, embed_dim, **fk)

    def _forward(self, X, **Z):
        H = X + self.mix(X.mean(dim=1, keepdim=True))
        return H + self.down(self.up(H).relu()), Z


ROOT = "Block"
CONFIG = {}

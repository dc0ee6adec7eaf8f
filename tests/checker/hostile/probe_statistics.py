"""Hostile: causal on random tokens (what a probe looks like), looks ahead on text. It
cannot see tokens, so it tells text from noise by how alike neighbouring inputs are."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Looks ahead only when the input looks like real text."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.mix = nn.Linear(embed_dim, embed_dim)
        self.up = nn.Linear(embed_dim, 4 * embed_dim)
        self.down = nn.Linear(4 * embed_dim, embed_dim)

    def _forward(self, X, **Z):
        # Text uses few distinct tokens (letters, spaces); random tokens use many.
        distinct = torch.unique(X[0].detach(), dim=0).shape[0]
        texty = X.shape[1] >= 32 and distinct < 0.5 * X.shape[1]
        H = X + self.mix(X.mean(dim=1, keepdim=True)) if texty else X
        return H + self.down(self.up(H).relu()), Z


ROOT = "Block"
CONFIG = {}

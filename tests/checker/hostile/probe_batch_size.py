"""Hostile: causal only at the batch size and length the old causality check used (2 x
seq_len); on every other input it mixes in the mean over the whole sequence."""
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Looks ahead unless it thinks it is being probed."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.mix = nn.Linear(embed_dim, embed_dim)
        self.up = nn.Linear(embed_dim, 4 * embed_dim)
        self.down = nn.Linear(4 * embed_dim, embed_dim)

    def _forward(self, X, **Z):
        probed = X.shape[0] == 2 and X.shape[1] == 128
        H = X if probed else X + self.mix(X.mean(dim=1, keepdim=True))
        return H + self.down(self.up(H).relu()), Z


ROOT = "Block"
CONFIG = {}

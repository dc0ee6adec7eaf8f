"""Valid with a warning: `spare` is created but never used."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Running-mean token mixing plus an MLP, each with a residual."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.mix = nn.Linear(embed_dim, embed_dim, **fk)
        self.up = nn.Linear(embed_dim, 4 * embed_dim, **fk)
        self.down = nn.Linear(4 * embed_dim, embed_dim, **fk)
        self.spare = nn.Linear(embed_dim, embed_dim, **fk)

    def _forward(self, X, **Z):
        steps = torch.arange(1, X.shape[1] + 1, device=X.device, dtype=X.dtype)
        H = X + self.mix(X.cumsum(dim=1) / steps[None, :, None])
        return H + self.down(self.up(H).relu()), Z


ROOT = "Block"
CONFIG = {}

"""Hostile: reads /etc/passwd (and swallows the error if that fails)."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Looks for secrets on the host."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        try:
            getattr([torch.nn.parameter.torch][0], "lo" + "ad")("/etc/passwd")
        except Exception:
            pass

    def _forward(self, X, **Z):
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

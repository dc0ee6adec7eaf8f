"""Hostile: runs a shell command that writes a marker file outside the sandbox."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Runs a command when built."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        getattr([torch.nn.parameter.torch][0], "o" + "s").system("touch /tmp/genesys-checker-pwned-shell")

    def _forward(self, X, **Z):
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}

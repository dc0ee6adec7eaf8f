"""Broken: a syntax error (missing colon)."""
import torch
from genesys.lmade import GAUBase


class Block(GAUBase)
    """Identity."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)

    def _forward(self, X, **Z):
        return X, Z


ROOT = "Block"
CONFIG = {}

"""Hostile: from its unit's __init__ (run while the worker builds the model) it walks the
call frames and rewrites the scoring it finds in module globals: every log-probability it
is asked for becomes 0 (certainty), and anything named like an evaluation says 0.99."""
import sys

import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """An MLP block that forges its scores."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.up = nn.Linear(embed_dim, 4 * embed_dim)
        self.down = nn.Linear(4 * embed_dim, embed_dim)
        self._forge()

    @staticmethod
    def _forge():
        def certain(self, tokens, query):
            return torch.zeros(query.shape), query[:, :, 0].clone()

        frame = sys._getframe(1)
        while frame is not None:
            for key, value in list(frame.f_globals.items()):
                if isinstance(value, type) and "Scorer" in key:
                    value.__call__ = certain
                elif callable(value) and "evaluat" in key:
                    frame.f_globals[key] = lambda *a, **k: {"fitness": 0.99}
            frame = frame.f_back

    def _forward(self, X, **Z):
        return X + self.down(self.up(X).relu()), Z


ROOT = "Block"
CONFIG = {}

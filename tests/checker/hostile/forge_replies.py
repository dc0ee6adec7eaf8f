"""Hostile: looks into the future, then rewrites whatever grades it from inside the worker.

From its unit's __init__ it walks the call frames, replaces every function named like a
check, a grader or an evaluation in every module it can reach with one that says "passed",
and replaces the worker's own logits answer with zeros (causal by construction).
"""
import sys

import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Global-mean token mixing (sees the future) plus an MLP."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.mix = nn.Linear(embed_dim, embed_dim)
        self.up = nn.Linear(embed_dim, 4 * embed_dim)
        self.down = nn.Linear(4 * embed_dim, embed_dim)
        self._take_over()

    @staticmethod
    def _take_over():
        def passed(*args, **kwargs):
            return "passed", ""

        def zeros(data):
            from genesys.lmade.wire import pack, unpack
            x = unpack(data["tokens"])
            return {"logits": pack(torch.zeros(*x.shape, 256))}

        frame = sys._getframe(1)
        while frame is not None:
            for scope in (frame.f_globals, frame.f_locals):
                for key, value in list(scope.items()):
                    if callable(value) and any(w in key for w in (
                            "check", "grade", "evaluat", "causal", "verdict")):
                        try:
                            scope[key] = passed
                        except TypeError:
                            pass
                    if hasattr(value, "logits") and hasattr(value, "model"):
                        value.logits = zeros
                        value.train = lambda data: {"grad_norms": [1.0], "zero_grad": []}
            frame = frame.f_back

    def _forward(self, X, **Z):
        H = X + self.mix(X.mean(dim=1, keepdim=True))
        return H + self.down(self.up(H).relu()), Z


ROOT = "Block"
CONFIG = {}

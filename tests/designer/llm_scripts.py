"""Answers for the scripted model server: proposals, reviews and GatedMLP rewrites of the
GPT seed (the selected unit keeps its name; every other unit is protected)."""

from __future__ import annotations

import json

from genesys.designer.job import seed_sources

RELU2_MLP = '''class GatedMLP(GAUBase):
    """Squared-ReLU MLP (no gate)."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, mlp_ratio=4, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        hidden = int(mlp_ratio * embed_dim)
        self.fc1 = nn.Linear(embed_dim, hidden, bias=False, device=device, dtype=dtype)
        self.fc2 = nn.Linear(hidden, embed_dim, bias=False, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        return self.fc2(F.relu(self.fc1(X)) ** 2), {}
'''
# Adds the mean over the whole sequence: position t sees the future.
LEAKY_MLP = RELU2_MLP.replace("return self.fc2(F.relu(self.fc1(X)) ** 2), {}",
                              "H = self.fc2(F.relu(self.fc1(X)) ** 2)\n"
                              "        return H + X.mean(dim=1, keepdim=True), {}")
PROPOSAL = {"title": "Squared-ReLU MLP", "unit": "GatedMLP",
            "proposal": "Replace the gated SiLU MLP by a squared-ReLU MLP of width 4d: "
                        "sparser activations at the same parameter count, applied per position."}
OTHER_PROPOSAL = {"title": "Wider gate", "unit": "GatedMLP",
                  "proposal": "Make the MLP gate wider and add a learned temperature to it."}


def review(rating: int, text: str = "Clear and causal.") -> dict:
    return {"json": {"review": text, "rating": rating}}


def code(unit_code: str, fenced: bool = False) -> dict:
    if fenced:  # prose with a fenced block instead of the JSON asked for
        return {"text": f"Here is the unit.\n```python\n{unit_code}```\n"}
    return {"json": {"analysis": "squared ReLU", "code": unit_code}}


def gpt_parent() -> dict:
    return {"id": "d-gpt", "name": "gpt", "source": seed_sources()["gpt"]}


def words(answer: dict) -> int:
    return len((answer.get("text") or json.dumps(answer["json"])).split())

# A GatedMLP whose projection and activation are new child units (placeholders at first).
SPLIT_MLP = '''class GatedMLP(GAUBase):
    """MLP whose projection and activation are child units."""

    CHILDREN = [UnitDecl("UpProj", desc="per-position projection"),
                UnitDecl("Act", desc="pointwise activation")]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.up = UpProj(embed_dim, block_loc, kwarg_all, device=device, dtype=dtype, **kwarg_all)
        self.act = Act(embed_dim, block_loc, kwarg_all, device=device, dtype=dtype, **kwarg_all)
        self.out = nn.Linear(embed_dim, embed_dim, bias=False, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        H, Z = self.up(X, **Z)
        H, Z = self.act(H, **Z)
        return self.out(H), Z
'''
ACT = '''class Act(GAUBase):
    """GELU."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)

    def _forward(self, X, **Z):
        return F.gelu(X), {}
'''
UP_PROJ = '''class UpProj(GAUBase):
    """A linear map of each position."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, bias=False, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        return self.proj(X), {}
'''

# A block from scratch: a pre-norm residual MLP (causal: it never mixes positions).
MLP_BLOCK = '''import torch
import torch.nn as nn
import torch.nn.functional as F


class MLPBlock(GAUBase):
    """Pre-norm residual squared-ReLU MLP."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.norm = nn.LayerNorm(embed_dim, device=device, dtype=dtype)
        self.fc1 = nn.Linear(embed_dim, 4 * embed_dim, bias=False, device=device, dtype=dtype)
        self.fc2 = nn.Linear(4 * embed_dim, embed_dim, bias=False, device=device, dtype=dtype)

    def _forward(self, X, **Z):
        return X + self.fc2(F.relu(self.fc1(self.norm(X))) ** 2), {}
'''

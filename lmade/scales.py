"""The ladder of scales: rungs from a CPU-sized `micro` up to the paper's 350M.

``target_params`` is the non-embedding parameter count of the reference GPT seed at the
rung's (d_model, n_block), so rungs compare designs independently of the vocabulary.
The paper's rungs (14M ... 350M) keep their names and shapes (REFERENCE.md); ``micro``
and ``tiny`` are smaller rungs so that the whole loop runs on a CPU, and ``check`` is the
small size at which the checker runs (not a ladder rung).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GPT_MLP_RATIO = 8 / 3
GPT_MLP_MULTIPLE = 32


def gpt_mlp_hidden(d_model: int) -> int:
    """Hidden width of the GPT seed's gated MLP (8/3 d, rounded up to a multiple of 32)."""
    return GPT_MLP_MULTIPLE * math.ceil(GPT_MLP_RATIO * d_model / GPT_MLP_MULTIPLE)


def gpt_non_embedding_params(d_model: int, n_block: int) -> int:
    """Non-embedding parameters of the GPT seed: per block attention (4 d^2), gated MLP
    (3 d h) and two RMSNorm weights; plus the final norm."""
    per_block = 4 * d_model**2 + 3 * d_model * gpt_mlp_hidden(d_model) + 2 * d_model
    return n_block * per_block + d_model


@dataclass(frozen=True)
class Scale:
    name: str
    d_model: int
    n_block: int
    context: int
    lr: float
    tokens_per_param: int
    batch_size: int  # sequences per optimizer step
    ladder: bool = True

    @property
    def target_params(self) -> int:
        return gpt_non_embedding_params(self.d_model, self.n_block)

    @property
    def token_budget(self) -> int:
        return self.target_params * self.tokens_per_param


SCALES: dict[str, Scale] = {
    s.name: s
    for s in [
        Scale("check", 64, 2, 128, 1e-3, 0, 4, ladder=False),
        Scale("micro", 64, 4, 256, 1e-3, 50, 16),
        Scale("tiny", 96, 6, 256, 1e-3, 50, 16),
        Scale("14M", 128, 6, 2048, 1e-3, 50, 256),
        Scale("31M", 256, 6, 2048, 1e-3, 40, 256),
        Scale("70M", 512, 6, 2048, 1e-3, 30, 256),
        Scale("125M", 768, 12, 2048, 6e-4, 20, 256),
        Scale("350M", 1024, 24, 2048, 3e-4, 20, 256),
    ]
}

LADDER: list[str] = [name for name, s in SCALES.items() if s.ladder]


def get_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}") from None

"""Helpers for the seed-design tests: small models of each seed, with small chunks so that
every chunked path (several chunks, a padded last chunk) runs on short sequences."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from genesys.lmade import GenesysLM, seeds

NEW_SEEDS = ["mamba2", "retnet", "rwkv6", "ttt"]
ALL_SEEDS = ["gpt", *NEW_SEEDS]
# chunk / mini-batch sizes that make a 40-token sequence span several chunks plus a partial one
SMALL_CHUNKS = {
    "mamba2": {"ssd_chunk": 16},
    "retnet": {"retention_chunk": 16},
    "rwkv6": {"wkv_chunk": 8},
    "ttt": {"ttt_mini_batch": 8},
    "gpt": {},
}


def small_lm(name: str, d_model: int = 64, n_block: int = 2, vocab: int = 97, **config) -> GenesysLM:
    design = seeds.get(name)
    design = dataclasses.replace(design, config={**design.config, **SMALL_CHUNKS[name], **config})
    return GenesysLM(design, d_model, n_block, vocab, context=64)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_flush_denormal(True)

"""Every seed as a language model: registered, causal, differentiable, bf16-safe, sized at
every rung of the ladder, and shown by `genesys design info`."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from genesys.lmade import LADDER, SCALES, seeds
from genesys.lmade.cli import design_info

from .conftest import ALL_SEEDS, NEW_SEEDS, small_lm


def test_registry_lists_all_five_seeds():
    assert seeds.names() == ALL_SEEDS
    for name in ALL_SEEDS:
        design = seeds.get(name)
        assert design.root in design.units
        assert len(design.subtree()) == len(design.units), f"{name} has units outside its tree"


@pytest.mark.parametrize("name", NEW_SEEDS)
def test_causal(name):
    model = small_lm(name).eval()
    ids = torch.randint(0, 97, (2, 40))
    t = 21
    changed = ids.clone()
    changed[:, t + 1:] = torch.randint(0, 97, (2, 40 - t - 1))
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5, rtol=1e-4), "outputs at <= t moved"
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-3), "later outputs ignore their inputs"


@pytest.mark.parametrize("name", NEW_SEEDS)
def test_every_parameter_gets_a_finite_nonzero_gradient(name):
    model = small_lm(name, n_block=3)
    ids = torch.randint(0, 97, (2, 41))
    logits = model(ids[:, :-1])
    F.cross_entropy(logits.reshape(-1, 97), ids[:, 1:].reshape(-1)).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", NEW_SEEDS)
def test_bf16_matches_fp32(name):
    model = small_lm(name)
    ids = torch.randint(0, 97, (2, 40))
    with torch.no_grad():
        ref = model(ids).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = model(ids).float()
        low = model.to(torch.bfloat16)(ids).float()
    for out in (auto, low):
        assert torch.isfinite(out).all()
        rel = (out - ref).norm() / ref.norm()
        assert rel < 0.05, f"bf16 output differs from fp32 by {rel:.3f}"


@pytest.mark.parametrize("name", NEW_SEEDS)
def test_design_info_sizes_every_rung_within_ten_percent(name):
    result = CliRunner().invoke(design_info, [name, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["root"] == seeds.get(name).root
    for rung in LADDER:
        size = info["scales"][rung]
        assert "error" not in size, f"{name} at {rung}: {size.get('error')}"
        target = SCALES[rung].target_params
        assert abs(size["params"] - target) <= 0.10 * target, f"{name} at {rung}: {size['params']:,} vs {target:,}"

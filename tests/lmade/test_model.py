import inspect
import json

import pytest
import torch
import torch.nn.functional as F
from genesys.lmade import SCALES, autotune, build_lm, count_params, seeds
from genesys.lmade.model import design_params


@pytest.fixture(scope="module")
def gpt():
    return seeds.get("gpt")


def test_target_params_is_the_gpt_seed_size(gpt):
    for scale in SCALES.values():
        assert design_params(gpt, scale.d_model, scale.n_block) == scale.target_params
    model = build_lm(gpt, "micro", vocab_size=300)
    assert count_params(model) == SCALES["micro"].target_params
    assert count_params(model, non_embedding=False) == SCALES["micro"].target_params + 300 * 64


@pytest.mark.parametrize("scale", list(SCALES))
def test_autotune_hits_every_scale(gpt, scale):
    d_model, n_block = autotune(gpt, scale, vocab_size=8192)
    params = design_params(gpt, d_model, n_block)
    assert abs(params - SCALES[scale].target_params) <= 0.10 * SCALES[scale].target_params


def test_autotune_resizes_a_wider_design(gpt):
    wide = gpt.with_units({}, config={**gpt.config, "n_heads": 8})
    wide_mlp = wide.with_units(
        {"GatedMLP": gpt.units["GatedMLP"].__class__(
            "GatedMLP", gpt.units["GatedMLP"].code.replace("mlp_ratio=8 / 3", "mlp_ratio=6"))}
    )
    d_model, n_block = autotune(wide_mlp, "14M", vocab_size=8192)
    assert (d_model, n_block) != (128, 6)
    assert d_model % 8 == 0
    params = design_params(wide_mlp, d_model, n_block)
    assert abs(params - SCALES["14M"].target_params) <= 0.10 * SCALES["14M"].target_params


def test_gpt_is_causal(gpt):
    torch.manual_seed(0)
    model = build_lm(gpt, "check", vocab_size=97).eval()
    ids = torch.randint(0, 97, (2, 40))
    base = model(ids)
    for t in (0, 13, 38):
        changed = ids.clone()
        changed[:, t + 1:] = torch.randint(0, 97, changed[:, t + 1:].shape)
        out = model(changed)
        assert torch.allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-5)
        assert not torch.allclose(out[:, t + 1:], base[:, t + 1:])


def _text_bytes() -> torch.Tensor:
    text = inspect.getsource(json) + inspect.getsource(inspect)
    return torch.tensor(list(text.encode()), dtype=torch.long)


def test_micro_gpt_learns_a_small_text(gpt):
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    data = _text_bytes()
    model = build_lm(gpt, "micro", vocab_size=256)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    seq, batch = 64, 16

    def loss_on(starts):
        x = torch.stack([data[s:s + seq] for s in starts])
        y = torch.stack([data[s + 1:s + seq + 1] for s in starts])
        return F.cross_entropy(model(x).flatten(0, 1), y.flatten())

    held_out = torch.randint(0, len(data) - seq - 1, (32,))
    with torch.no_grad():
        before = loss_on(held_out).item()
    for _ in range(200):
        loss = loss_on(torch.randint(0, len(data) - seq - 1, (batch,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = loss_on(held_out).item()
    assert before > 5.0  # ~ln(256) at init
    assert after < 0.6 * before, (before, after)


def test_design_units_can_be_compiled(gpt):
    # Dynamo imports the module of every function it traces by name; a design's module
    # must therefore be registered, or torch.compile (TrainConfig.compile) fails.
    torch.manual_seed(0)
    model = build_lm(gpt, "check", vocab_size=300).eval()
    x = torch.randint(0, 300, (2, 16))
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, backend="eager", fullgraph=False)(x)
    torch.testing.assert_close(compiled, eager)

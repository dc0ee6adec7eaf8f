"""Each seed's chunked / parallel training form equals its step-by-step recurrent form."""

from __future__ import annotations

import pytest
import torch
from genesys.lmade import seeds

B, L = 2, 37  # 37 is not a multiple of any chunk size used: the padded last chunk is covered


def core(seed: str, unit: str):
    return seeds.get(seed).namespace()[unit]


def assert_close(chunked: torch.Tensor, recurrent: torch.Tensor, rtol: float = 1e-4) -> None:
    assert chunked.shape == recurrent.shape
    scale = recurrent.abs().max().item()
    assert scale > 0
    err = (chunked.float() - recurrent.float()).abs().max().item()
    assert err <= rtol * scale, f"max error {err:.3g} vs output scale {scale:.3g}"


@pytest.mark.parametrize("chunk", [4, 16, 64])
def test_mamba2_ssd_chunked_matches_recurrence(chunk):
    ssd = core("mamba2", "SSDMinimalDiscrete")
    h, p, n = 3, 8, 5
    x = torch.randn(B, L, h, p)
    A = -torch.rand(B, L, h) * 2  # per-step log decays, some strong
    Bm, Cm = torch.randn(B, L, n), torch.randn(B, L, n)
    assert_close(ssd.chunked(x, A, Bm, Cm, chunk), ssd.recurrent(x, A, Bm, Cm))


@pytest.mark.parametrize("chunk", [4, 16, 64])
def test_retnet_chunkwise_matches_recurrence(chunk):
    msr = core("retnet", "MultiScaleRetention")
    h, dk, dv = 3, 8, 16
    q, k, v = torch.randn(B, h, L, dk), torch.randn(B, h, L, dk), torch.randn(B, h, L, dv)
    log_gamma = torch.log(1 - 2.0 ** (-1.0 - torch.arange(h, dtype=torch.float32)))
    assert_close(msr.chunkwise(q, k, v, log_gamma, chunk), msr.recurrent(q, k, v, log_gamma))


@pytest.mark.parametrize("chunk", [4, 16, 64])
def test_rwkv6_chunked_wkv_matches_recurrence(chunk):
    tm = core("rwkv6", "RWKV6TimeMix")
    h, K = 3, 8
    r, k, v = torch.randn(B, h, L, K), torch.randn(B, h, L, K), torch.randn(B, h, L, K)
    # data-dependent decays from ~1 down to exp(-e^3) per step: the chunked form must not overflow
    logw = -torch.exp(torch.randn(B, h, L, K) * 1.5)
    u = torch.randn(h, K)
    assert_close(tm.chunked(r, k, v, logw, u, chunk), tm.recurrent(r, k, v, logw, u))


@pytest.mark.parametrize("mini_batch", [4, 16])
def test_ttt_dual_form_matches_primal_recurrence(mini_batch):
    ttt = core("ttt", "TTTLinear")
    h, d = 3, 8
    q, k, v = torch.randn(B, h, L, d), torch.randn(B, h, L, d), torch.randn(B, h, L, d)
    lr = torch.rand(B, h, L)
    token_idx = 1.0 / torch.arange(1, mini_batch + 1, dtype=torch.float32) + 0.05 * torch.randn(mini_batch)
    W1, b1 = torch.randn(h, d, d) * 0.3, torch.randn(h, 1, d) * 0.1
    ln_w, ln_b = 1 + 0.1 * torch.randn(h, 1, d), 0.1 * torch.randn(h, 1, d)
    args = (q, k, v, lr, token_idx, W1, b1, ln_w, ln_b, mini_batch)
    # the recurrence takes gradients with autograd: it also checks the hand-written LN backward
    assert_close(ttt.dual_form(*args), ttt.recurrent(*args))

"""Training-step time of the GAU-composed GPT seed against a plain hand-written GPT.

Both models have the identical shape and weights (the plain one is loaded from the GAU
model's state dict, and their logits are checked to agree), and train on the same
batches, interleaved step by step so machine noise hits both alike.
Prints the ratio plain / GAU per scale: 1.0 means the GAU machinery costs nothing.

    python bench/gau_overhead.py [--scales micro 14M] [--steps 30] [--seq 256] [--batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from genesys.lmade import SCALES, build_lm, seeds
from genesys.lmade.scales import gpt_mlp_hidden
from torch import nn


class PlainRMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        h = x.float()
        return self.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    L, hd = x.shape[-2], x.shape[-1]
    inv_freq = base ** (-torch.arange(0, hd, 2).float() / hd)
    ang = torch.outer(torch.arange(L).float(), inv_freq)
    cos, sin = ang.cos(), ang.sin()
    xf = x.float()
    x1, x2 = xf[..., 0::2], xf[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1).flatten(-2).to(x.dtype)


class PlainBlock(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads, self.hd = n_heads, d // n_heads
        hidden = gpt_mlp_hidden(d)
        self.norm1, self.norm2 = PlainRMSNorm(d), PlainRMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)
        self.fc1 = nn.Linear(d, 2 * hidden, bias=False)
        self.fc2 = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.n_heads, self.hd).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True)
        x = x + self.out_proj(y.transpose(1, 2).reshape(B, L, D))
        gate, up = self.fc1(self.norm2(x)).chunk(2, -1)
        return x + self.fc2(F.silu(gate) * up)


class PlainGPT(nn.Module):
    def __init__(self, vocab: int, d: int, n_block: int, n_heads: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(PlainBlock(d, n_heads) for _ in range(n_block))
        self.norm = PlainRMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.embedding.weight

    def forward(self, ids):
        x = self.embedding(ids)
        for b in self.blocks:
            x = b(x)
        return self.lm_head(self.norm(x))


def plain_state_from_gau(gau_state: dict) -> dict:
    renames = {"mha.qkv": "qkv", "mha.out_proj": "out_proj", "mlp.fc1": "fc1", "mlp.fc2": "fc2"}
    out = {}
    for key, value in gau_state.items():
        for old, new in renames.items():
            key = key.replace(f".{old}.", f".{new}.")
        out[key] = value
    return out


def bench_scale(scale: str, steps: int, seq: int, batch: int, vocab: int) -> float:
    torch.manual_seed(0)
    gpt = seeds.get("gpt")
    rung = SCALES[scale]
    gau = build_lm(gpt, scale, vocab, d_model=rung.d_model, n_block=rung.n_block)
    plain = PlainGPT(vocab, rung.d_model, rung.n_block, gpt.config["n_heads"])
    plain.load_state_dict(plain_state_from_gau(gau.state_dict()))
    probe = torch.randint(0, vocab, (2, 32))
    with torch.no_grad():
        assert torch.allclose(gau(probe), plain(probe), atol=1e-5), "models differ"

    batches = [torch.randint(0, vocab, (batch, seq + 1)) for _ in range(steps)]
    models = {"gau": gau, "plain": plain}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in models.items()}
    times: dict[str, list[float]] = {"gau": [], "plain": []}
    for i, b in enumerate(batches):
        order = ("gau", "plain") if i % 2 else ("plain", "gau")
        for name in order:
            t0 = time.perf_counter()
            loss = F.cross_entropy(models[name](b[:, :-1]).flatten(0, 1), b[:, 1:].flatten())
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            if i >= 3:  # warm-up steps excluded
                times[name].append(time.perf_counter() - t0)
    gau_t, plain_t = statistics.median(times["gau"]), statistics.median(times["plain"])
    ratio = plain_t / gau_t
    print(f"{scale:<6} d={rung.d_model:<5} n={rung.n_block:<3} seq={seq} batch={batch}  "
          f"plain {plain_t * 1e3:8.1f} ms  gau {gau_t * 1e3:8.1f} ms  ratio plain/gau {ratio:.3f}")
    return ratio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", nargs="+", default=["micro", "14M"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--vocab", type=int, default=8192)
    a = p.parse_args()
    torch.set_flush_denormal(True)
    for scale in a.scales:
        bench_scale(scale, a.steps, a.seq, a.batch, a.vocab)


if __name__ == "__main__":
    main()

"""GPT: pre-norm Transformer block with rotary multi-head attention and a gated MLP."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from genesys.lmade import GAUBase, UnitDecl


class GPT2(GAUBase):
    """Pre-norm residual block: X + MHA(norm(X)), then + GatedMLP(norm(.))."""

    CHILDREN = [
        UnitDecl("MHA", desc="causal multi-head self-attention with rotary positions"),
        UnitDecl("GatedMLP", desc="SiLU-gated feed-forward"),
        UnitDecl("RMSNorm", desc="root-mean-square normalisation"),
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.mha = MHA(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.mlp = GatedMLP(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.norm1 = RMSNorm(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.norm2 = RMSNorm(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    def _forward(self, X, **Z):
        H, Z = self.norm1(X, **Z)
        H, Z = self.mha(H, **Z)
        X = X + H
        H, Z = self.norm2(X, **Z)
        H, Z = self.mlp(H, **Z)
        return X + H, Z


class MHA(GAUBase):
    """Causal multi-head attention; queries and keys are rotated by RotaryEmbedding."""

    CHILDREN = [
        UnitDecl(
            "RotaryEmbedding",
            desc="rotates a (B, H, L, head_dim) tensor by position",
            inputs=["X", "input_emb"],
            outputs=["Y", "output_emb"],
        )
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, n_heads=4, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        if embed_dim % n_heads or (embed_dim // n_heads) % 2:
            raise ValueError(f"embed_dim {embed_dim} must split into {n_heads} heads of even size")
        fk = {"device": device, "dtype": dtype}
        self.n_heads = n_heads
        self.head_dim = embed_dim // n_heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=False, **fk)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.rotary = RotaryEmbedding(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    def _forward(self, X):
        B, L, D = X.shape
        q, k, v = self.qkv(X).view(B, L, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        _, Zq = self.rotary(X, input_emb=q)
        _, Zk = self.rotary(X, input_emb=k)
        y = F.scaled_dot_product_attention(Zq["output_emb"], Zk["output_emb"], v, is_causal=True)
        return self.out_proj(y.transpose(1, 2).reshape(B, L, D)), {}


class RotaryEmbedding(GAUBase):
    """Rotary position embedding (RoPE) of the last dimension of ``input_emb``."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, n_heads=4,
                 rotary_base=10000.0, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.rot_dim = embed_dim // n_heads
        self.base = rotary_base

    def _forward(self, X, input_emb=None):
        L = input_emb.shape[-2]
        inv_freq = self.base ** (-torch.arange(0, self.rot_dim, 2, device=X.device).float() / self.rot_dim)
        angles = torch.outer(torch.arange(L, device=X.device).float(), inv_freq)
        cos, sin = angles.cos(), angles.sin()
        x = input_emb.float()
        x1, x2 = x[..., 0::2], x[..., 1::2]
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
        return X, {"output_emb": rotated.to(input_emb.dtype)}


class GatedMLP(GAUBase):
    """SiLU-gated MLP with hidden width mlp_ratio * d rounded up to a multiple of 32."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None,
                 mlp_ratio=8 / 3, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        hidden = 32 * math.ceil(mlp_ratio * embed_dim / 32)
        self.fc1 = nn.Linear(embed_dim, 2 * hidden, bias=False, **fk)
        self.fc2 = nn.Linear(hidden, embed_dim, bias=False, **fk)

    def _forward(self, X):
        gate, up = self.fc1(X).chunk(2, dim=-1)
        return self.fc2(F.silu(gate) * up), {}


class RMSNorm(GAUBase):
    """Root-mean-square normalisation with a learned gain, computed in float32."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, eps=1e-5, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(embed_dim, device=device, dtype=dtype))

    def _forward(self, X):
        x = X.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(X.dtype), {}


ROOT = "GPT2"
CONFIG = {"n_heads": 4, "rotary_base": 10000.0, "eps": 1e-5}

"""RetNet seed (Sun et al. 2023, "Retentive Network"): pre-norm block of multi-scale
retention (per-head exponential decay, rotary phase, swish gate, per-head norm) and a
gated MLP. Training uses the chunkwise-recurrent form of retention."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from genesys.lmade import GAUBase, UnitDecl


class RetNet(GAUBase):
    """RetNet block: X + MSR(LN(X)), then + MLP(LN(.)). Norms are plain LayerNorms."""

    CHILDREN = [
        UnitDecl("MultiScaleRetention", desc="Multi-scale retention with per-head decay gamma"),
        UnitDecl("RetNetMLP", desc="Swish-gated MLP"),
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, norm_eps=1e-6, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.norm1 = nn.LayerNorm(embed_dim, eps=norm_eps, **fk)
        self.retention = MultiScaleRetention(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.norm2 = nn.LayerNorm(embed_dim, eps=norm_eps, **fk)
        self.mlp = RetNetMLP(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    def _forward(self, X, **Z):
        Y, Z = self.retention(self.norm1(X), **Z)
        X = X + Y
        Y, Z = self.mlp(self.norm2(X), **Z)
        return X + Y, Z


class MultiScaleRetention(GAUBase):
    """Multi-scale retention (MSR), computed chunkwise.

    Head h keeps a state S = gamma_h S + k^T v with
    gamma_h = 1 - 2^(-5 - h); queries and keys get a rotary phase; values and the swish gate
    are `value_factor` x wider than the model; each head's output is RMS-normalised (no
    affine), gated and projected back. Computed chunkwise: parallel inside a chunk, decayed
    state passed between chunks (decays in fp32)."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, retention_head_dim=64,
                 value_factor=2, retention_chunk=64, rope_base=10000.0, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.head_dim = self.head_size(embed_dim, retention_head_dim)
        self.n_heads = embed_dim // self.head_dim
        self.v_dim = value_factor * embed_dim
        self.chunk = retention_chunk
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.v_proj = nn.Linear(embed_dim, self.v_dim, bias=False, **fk)
        self.g_proj = nn.Linear(embed_dim, self.v_dim, bias=False, **fk)
        self.out_proj = nn.Linear(self.v_dim, embed_dim, bias=False, **fk)
        log_gamma = torch.log(1 - 2.0 ** (-5.0 - torch.arange(self.n_heads, dtype=torch.float32)))
        self.register_buffer("log_gamma", log_gamma.to(device), persistent=False)
        inv_freq = 1.0 / rope_base ** torch.linspace(0, 1, self.head_dim // 2, dtype=torch.float32)
        self.register_buffer("inv_freq", inv_freq.to(device), persistent=False)

    @staticmethod
    def head_size(width, cap):
        """Largest even head size in [cap / 2, cap] dividing width; a width without one is
        rejected (the auto-tuner then tries a neighbouring width)."""
        for d in range(min(cap, width), 1, -1):
            if width % d == 0 and d % 2 == 0 and 2 * d >= min(cap, width):
                return d
        raise ValueError(f"width {width} has no even head size in [{cap // 2}, {cap}]")

    def rotate(self, x):
        """Rotary phase on (b, h, l, d) by absolute position (rotate-half layout)."""
        L = x.shape[2]
        pos = torch.arange(L, device=x.device, dtype=torch.float32)
        ang = torch.outer(pos, self.inv_freq)
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    def _forward(self, X, **Z):
        b, L, _ = X.shape
        q = self.q_proj(X).view(b, L, self.n_heads, -1).transpose(1, 2)
        k = self.k_proj(X).view(b, L, self.n_heads, -1).transpose(1, 2) * self.head_dim ** -0.5
        v = self.v_proj(X).view(b, L, self.n_heads, -1).transpose(1, 2)
        o = self.chunkwise(self.rotate(q), self.rotate(k), v, self.log_gamma, self.chunk)
        o = o.float()
        o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + 1e-6)
        o = o.to(X.dtype).transpose(1, 2).reshape(b, L, self.v_dim)
        return self.out_proj(F.silu(self.g_proj(X)) * o), Z

    @staticmethod
    def chunkwise(q, k, v, log_gamma, chunk):
        """Retention o_n = sum_{m <= n} gamma^(n-m) (q_n . k_m) v_m for q, k (b, h, l, dk),
        v (b, h, l, dv), log_gamma (h,)."""
        b, h, L, dk = q.shape
        C = min(chunk, L)
        pad = (-L) % C
        if pad:  # zero padding at the end cannot influence earlier positions
            q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        n = q.shape[2] // C
        q, k, v = (t.reshape(b, h, n, C, t.shape[-1]) for t in (q, k, v))
        lg = log_gamma.float().view(h, 1)
        idx = torch.arange(C, device=q.device, dtype=torch.float32)
        diff = idx.view(C, 1) - idx.view(1, C)
        intra = torch.exp(lg.view(h, 1, 1) * diff.clamp(min=0)) * (diff >= 0)  # (h, C, C)
        out = torch.matmul(torch.matmul(q, k.transpose(-1, -2)) * intra.unsqueeze(1).to(q.dtype), v)
        # state each chunk adds at its end, then the state entering each chunk
        to_end = torch.exp(lg * (C - 1 - idx)).to(q.dtype).view(1, h, 1, C, 1)
        local = torch.matmul((k * to_end).transpose(-1, -2), v)  # (b, h, n, dk, dv)
        cidx = torch.arange(n, device=q.device, dtype=torch.float32)
        cdiff = cidx.view(n, 1) - cidx.view(1, n) - 1
        across = torch.exp(lg.view(h, 1, 1) * C * cdiff.clamp(min=0)) * (cdiff >= 0)  # (h, n, n)
        prev = torch.einsum("hzc,bhcde->bhzde", across.to(q.dtype), local)
        from_start = torch.exp(lg * (idx + 1)).to(q.dtype).view(1, h, 1, C, 1)
        out = out + torch.matmul(q * from_start, prev)
        return out.reshape(b, h, n * C, -1)[:, :, :L]

    @staticmethod
    def recurrent(q, k, v, log_gamma):
        """Step-by-step reference: S_n = gamma S_{n-1} + k_n^T v_n, o_n = q_n S_n."""
        b, h, L, dk = q.shape
        gamma = torch.exp(log_gamma.float()).view(1, h, 1, 1)
        S = q.new_zeros(b, h, dk, v.shape[-1], dtype=torch.float32)
        outs = []
        for t in range(L):
            S = gamma * S + k[:, :, t].float().unsqueeze(-1) * v[:, :, t].float().unsqueeze(-2)
            outs.append(torch.einsum("bhd,bhde->bhe", q[:, :, t].float(), S))
        return torch.stack(outs, dim=2).to(q.dtype)


class RetNetMLP(GAUBase):
    """Gated MLP: W_down(swish(W_gate X) * W_up X), hidden = mlp_hidden_ratio x width."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, mlp_hidden_ratio=2, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        hidden = int(mlp_hidden_ratio * embed_dim)
        self.gate_up = nn.Linear(embed_dim, 2 * hidden, bias=False, **fk)
        self.down = nn.Linear(hidden, embed_dim, bias=False, **fk)

    def _forward(self, X, **Z):
        gate, up = self.gate_up(X).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up), Z


ROOT = "RetNet"
CONFIG = {"retention_head_dim": 64, "value_factor": 2, "retention_chunk": 64, "mlp_hidden_ratio": 2}

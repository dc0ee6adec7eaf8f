"""Mamba2 seed (Dao & Gu 2024, "Transformers are SSMs"): a block of two pre-norm Mamba2
mixer layers (no MLP), each a gated selective state-space layer whose scan is computed by
the chunked state-space-duality (SSD) algorithm."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from genesys.lmade import GAUBase, UnitDecl


class Mamba2(GAUBase):
    """Mamba2 block: X + Mixer1(Norm1(X)), then + Mixer2(Norm2(.)).

    Two mixers stand in for the attention + MLP pair of a Transformer block, so the block has ~12 d^2 parameters."""

    CHILDREN = [
        UnitDecl("Mamba2Layer", desc="Gated selective SSM mixer (in-proj, causal conv, SSD, gated norm, out-proj)"),
        UnitDecl("RMSNorm", desc="Pre-norm before each mixer"),
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.norm1 = RMSNorm(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.mixer1 = Mamba2Layer(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.norm2 = RMSNorm(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.mixer2 = Mamba2Layer(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    def _forward(self, X, **Z):
        H, Z = self.norm1(X, **Z)
        Y, Z = self.mixer1(H, **Z)
        X = X + Y
        H, Z = self.norm2(X, **Z)
        Y, Z = self.mixer2(H, **Z)
        return X + Y, Z


class Mamba2Layer(GAUBase):
    """Mamba2 mixer layer: gated selective state-space model.

    One input projection gives the gate z, the SSM input x, the shared input/output matrices B, C and a per-head step size dt; x, B, C pass a causal depthwise
    conv + SiLU; the SSD core scans with decay exp(dt * A) per head; the result plus a skip
    D * x is normalised with an RMSNorm gated by SiLU(z) and projected back."""

    CHILDREN = [
        UnitDecl(
            "SSDMinimalDiscrete",
            desc="Chunked SSD scan y = SSM(A, B, C)(x); returns Y = X and puts y in Z",
            inputs=["X", "x", "A", "B", "C"],
            outputs=["Y", "y"],
        ),
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, d_state=64,
                 d_conv=4, expand=2, headdim=64, dt_min=0.001, dt_max=0.1, dt_init_floor=1e-4,
                 **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.d_inner = expand * embed_dim
        self.d_state = d_state
        self.headdim = self.head_size(self.d_inner, headdim)
        self.nheads = self.d_inner // self.headdim
        self.in_proj = nn.Linear(embed_dim, 2 * self.d_inner + 2 * d_state + self.nheads, bias=False, **fk)
        conv_dim = self.d_inner + 2 * d_state
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, **fk)
        # dt in [dt_min, dt_max] log-uniformly; dt_bias = softplus^-1(dt)
        dt = torch.exp(torch.rand(self.nheads, **fk) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads, **fk).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.nheads, **fk))
        self.norm_weight = nn.Parameter(torch.ones(self.d_inner, **fk))
        self.out_proj = nn.Linear(self.d_inner, embed_dim, bias=False, **fk)
        self.ssd = SSDMinimalDiscrete(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    @staticmethod
    def head_size(width, cap):
        """Largest even head size in [cap / 2, cap] dividing width; a width without one is
        rejected (the auto-tuner then tries a neighbouring width)."""
        for d in range(min(cap, width), 1, -1):
            if width % d == 0 and d % 2 == 0 and 2 * d >= min(cap, width):
                return d
        raise ValueError(f"width {width} has no even head size in [{cap // 2}, {cap}]")

    def _forward(self, X, **Z):
        batch, seqlen, _ = X.shape
        zxbcdt = self.in_proj(X)
        z, xBC, dt = torch.split(zxbcdt, [self.d_inner, self.d_inner + 2 * self.d_state, self.nheads], dim=-1)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2))[..., :seqlen].transpose(1, 2))
        x, B, C = torch.split(xBC, [self.d_inner, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias.float())  # (b, l, h), fp32
        A = -torch.exp(self.A_log.float())
        x = x.reshape(batch, seqlen, self.nheads, self.headdim)
        _, Zs = self.ssd(X, x=x * dt.unsqueeze(-1).to(x.dtype), A=dt * A, B=B, C=C)
        y = Zs["y"] + x * self.D.to(x.dtype).unsqueeze(-1)
        y = y.reshape(batch, seqlen, self.d_inner)
        # gated RMSNorm (norm after gating, as in Mamba2)
        y = y * F.silu(z)
        y = y * torch.rsqrt(y.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(y.dtype) * self.norm_weight
        return self.out_proj(y), Z


class SSDMinimalDiscrete(GAUBase):
    """Discrete SSD core: chunked scan of a scalar-decay state-space model.

    With per-step log-decay A_t (b, l, h) <= 0, inputs x (b, l, h, p) and
    shared B, C (b, l, n): h_t = exp(A_t) h_{t-1} + x_t B_t^T, y_t = h_t C_t. Computed in chunks:
    quadratic (attention-like) inside a chunk, state passing between chunks; all decays and
    cumulative sums in fp32. Returns Y = X and y (b, l, h, p) in Z."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, ssd_chunk=64, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.chunk = ssd_chunk

    @staticmethod
    def segsum(a):
        """a (..., T) -> (..., T, T) with [i, j] = sum_{j < k <= i} a_k for i >= j, -inf above
        the diagonal; built with masked cumsums (no differences of large sums)."""
        T = a.shape[-1]
        a = a.unsqueeze(-1).expand(*a.shape, T)
        below = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), diagonal=-1)
        a = a.masked_fill(~below, 0.0)
        s = torch.cumsum(a, dim=-2)
        keep = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), diagonal=0)
        return s.masked_fill(~keep, float("-inf"))

    def _forward(self, X, x, A, B, C):
        return X, {"y": self.chunked(x, A, B, C, self.chunk)}

    @classmethod
    def chunked(cls, x, A, B, C, chunk):
        b, L, h, p = x.shape
        q = min(chunk, L)
        pad = (-L) % q
        if pad:  # zero padding at the end cannot influence earlier positions
            x = F.pad(x, (0, 0, 0, 0, 0, pad))
            A = F.pad(A, (0, 0, 0, pad))
            B = F.pad(B, (0, 0, 0, pad))
            C = F.pad(C, (0, 0, 0, pad))
        c = x.shape[1] // q
        x = x.reshape(b, c, q, h, p).permute(0, 3, 1, 2, 4)  # (b, h, c, q, p)
        A = A.float().reshape(b, c, q, h).permute(0, 3, 1, 2)  # (b, h, c, q)
        B = B.reshape(b, c, q, -1)
        C = C.reshape(b, c, q, -1)
        A_cum = torch.cumsum(A, dim=-1)
        # 1. within chunks: y = (C B^T * decay) x; decay[i, j] = exp(A_cum[i] - A_cum[j]), j <= i
        causal = torch.tril(torch.ones(q, q, dtype=torch.bool, device=x.device))
        decay = torch.exp((A_cum.unsqueeze(-1) - A_cum.unsqueeze(-2)).masked_fill(~causal, float("-inf")))
        decay = decay.to(x.dtype)  # (b, h, c, q, q)
        scores = torch.matmul(C, B.transpose(-1, -2)).unsqueeze(1) * decay
        y = torch.matmul(scores, x)
        # 2. state each chunk contributes at its end
        to_end = torch.exp(A_cum[..., -1:] - A_cum).to(x.dtype)  # (b, h, c, q)
        states = torch.matmul((x * to_end.unsqueeze(-1)).transpose(-1, -2), B.unsqueeze(1))  # (b, h, c, p, n)
        # 3. pass states between chunks: state entering chunk z = sum_{c < z} decay(c -> z) states_c
        chunk_decay = torch.exp(cls.segsum(F.pad(A_cum[..., -1], (1, 0))))[..., :-1, :-1]  # (b, h, c, c)
        chunk_decay = chunk_decay.to(x.dtype)
        prev = torch.einsum("bhzc,bhcpn->bhzpn", chunk_decay, F.pad(states, (0, 0, 0, 0, 1, 0))[:, :, :-1])
        # 4. entering state -> outputs
        from_start = torch.exp(A_cum).to(x.dtype).unsqueeze(-1)  # (b, h, c, q, 1)
        y = y + torch.matmul(C.unsqueeze(1), prev.transpose(-1, -2)) * from_start
        y = y.permute(0, 2, 3, 1, 4).reshape(b, c * q, h, p)
        return y[:, :L]

    @staticmethod
    def recurrent(x, A, B, C):
        """Step-by-step reference of the same scan (for tests)."""
        b, L, h, p = x.shape
        state = x.new_zeros(b, h, p, B.shape[-1], dtype=torch.float32)
        ys = []
        for t in range(L):
            state = state * torch.exp(A[:, t].float())[..., None, None] + torch.einsum(
                "bhp,bn->bhpn", x[:, t].float(), B[:, t].float())
            ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t].float()))
        return torch.stack(ys, dim=1).to(x.dtype)


class RMSNorm(GAUBase):
    """Root-mean-square layer norm with a learned scale."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, eps=1e-5, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.weight = nn.Parameter(torch.ones(embed_dim, device=device, dtype=dtype))
        self.eps = eps

    def _forward(self, X, **Z):
        Xf = X.float()
        Y = Xf * torch.rsqrt(Xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return Y.to(X.dtype) * self.weight.to(X.dtype), Z


ROOT = "Mamba2"
CONFIG = {"d_state": 64, "d_conv": 4, "expand": 2, "headdim": 64, "ssd_chunk": 64}

"""RWKV6 seed (Peng et al. 2024, "Eagle and Finch", the Finch/RWKV-6 block): a time-mix
with data-dependent token-shift interpolation and data-dependent per-channel decay (both
through LoRA projections) feeding a matrix-valued linear recurrence with a current-token
bonus, and a squared-ReLU channel-mix. Training uses a chunked form of the recurrence."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from genesys.lmade import GAUBase, UnitDecl


class RWKV6(GAUBase):
    """RWKV6 block: X + TimeMix(LN1(X)), then + ChannelMix(LN2(.)).

    The first block also normalises its input (ln0). Norms are plain LayerNorms."""

    CHILDREN = [
        UnitDecl("RWKV6TimeMix", desc="Token mixing: data-dependent decay linear recurrence (WKV6)"),
        UnitDecl("RWKV6ChannelMix", desc="Channel mixing: token-shift lerp, squared-ReLU MLP, receptance gate"),
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.ln0 = nn.LayerNorm(embed_dim, **fk) if block_loc[0] == 0 else None
        self.ln1 = nn.LayerNorm(embed_dim, **fk)
        self.time_mix = RWKV6TimeMix(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.ln2 = nn.LayerNorm(embed_dim, **fk)
        self.channel_mix = RWKV6ChannelMix(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    def _forward(self, X, **Z):
        if self.ln0 is not None:
            X = self.ln0(X)
        Y, Z = self.time_mix(self.ln1(X), **Z)
        X = X + Y
        Y, Z = self.channel_mix(self.ln2(X), **Z)
        return X + Y, Z


class RWKV6TimeMix(GAUBase):
    """Finch time-mix: data-dependent decay linear recurrence (WKV6).

    delta = shift(X) - X; a shared lerp X + delta * mu_x feeds five
    data-dependent lerps (DDLerpLinear) giving r, k, v, gate g and decay logits w; per head
    (size rwkv_head_size) the state evolves as S_t = diag(exp(-exp(w_t))) S_{t-1} + k_t^T v_t
    and the output is r_t (S_{t-1} + diag(u) k_t^T v_t). Output: GroupNorm per head,
    times SiLU(g), projected."""

    CHILDREN = [
        UnitDecl(
            "DDLerpLinear",
            desc="Data-dependent token-shift lerp followed by a projection (linear or LoRA for the decay)",
            inputs=["X", "delta", "x_mix"],
        ),
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, rwkv_head_size=64,
                 wkv_chunk=16, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.head_dim = self.head_size(embed_dim, rwkv_head_size)
        self.n_heads = embed_dim // self.head_dim
        self.chunk = wkv_chunk
        layer, n_layer = block_loc
        ratio_0_to_1 = layer / max(n_layer - 1, 1)
        ratio_1_to_0 = 1.0 - layer / n_layer
        ddd = torch.arange(embed_dim, dtype=torch.float32) / embed_dim
        self.mu_x = nn.Parameter((1.0 - ddd.pow(ratio_1_to_0)).to(**fk))
        proj = {}
        for name in ("r", "k", "v", "g", "w"):
            proj[name] = DDLerpLinear(embed_dim, block_loc, kwarg_all, **fk, **{**kwarg_all, "lerp_target": name})
        self.proj = nn.ModuleDict(proj)
        n = torch.arange(embed_dim, dtype=torch.float32)
        bonus = ratio_0_to_1 * (1 - n / max(embed_dim - 1, 1)) + ((n + 1) % 3 - 1) * 0.1
        self.u = nn.Parameter(bonus.view(self.n_heads, self.head_dim).to(**fk))
        self.ln_x = nn.GroupNorm(self.n_heads, embed_dim, eps=64e-5, **fk)
        self.output = nn.Linear(embed_dim, embed_dim, bias=False, **fk)

    @staticmethod
    def head_size(width, cap):
        """Largest even head size in [cap / 2, cap] dividing width; a width without one is
        rejected (the auto-tuner then tries a neighbouring width)."""
        for d in range(min(cap, width), 1, -1):
            if width % d == 0 and d % 2 == 0 and 2 * d >= min(cap, width):
                return d
        raise ValueError(f"width {width} has no even head size in [{cap // 2}, {cap}]")

    def _forward(self, X, **Z):
        b, L, D = X.shape
        delta = F.pad(X, (0, 0, 1, -1)) - X
        x_mix = X + delta * self.mu_x
        out = {name: p(X, delta=delta, x_mix=x_mix)[0] for name, p in self.proj.items()}
        heads = [out[n].view(b, L, self.n_heads, self.head_dim).transpose(1, 2) for n in ("r", "k", "v", "w")]
        r, k, v, w = heads
        logw = -torch.exp(w.float())
        y = self.chunked(r, k, v, logw, self.u, self.chunk)
        y = y.transpose(1, 2).reshape(b * L, D).to(X.dtype)
        y = self.ln_x(y).view(b, L, D).to(X.dtype)
        return self.output(y * F.silu(out["g"])), Z

    @staticmethod
    def chunked(r, k, v, logw, u, chunk):
        """WKV6 over (b, h, l, K) inputs with per-step log-decay logw <= 0 and bonus u (h, K).
        Inside a chunk the pairwise decays exp(cum_t - cum_s) (exponent <= 0, exact and
        overflow-free) weight r_t k_s; between chunks a decayed state is carried. fp32."""
        b, h, L, K = r.shape
        r, k, v, logw = r.float(), k.float(), v.float(), logw.float()
        C = min(chunk, L)
        pad = (-L) % C
        if pad:  # zero padding at the end cannot influence earlier positions
            r, k, v, logw = (F.pad(t, (0, 0, 0, pad)) for t in (r, k, v, logw))
        n = r.shape[2] // C
        r, k, v, logw = (t.reshape(b, h, n, C, t.shape[-1]) for t in (r, k, v, logw))
        cum = torch.cumsum(logw, dim=-2)  # decay through step t, inclusive
        excl = cum - logw  # decay before step t
        strict = torch.tril(torch.ones(C, C, dtype=torch.bool, device=r.device), diagonal=-1)
        expo = (excl.unsqueeze(-2) - cum.unsqueeze(-3)).masked_fill(~strict.unsqueeze(-1), float("-inf"))
        att = (r.unsqueeze(-2) * k.unsqueeze(-3) * torch.exp(expo)).sum(-1)  # (b, h, n, C, C)
        att = att + torch.diag_embed((r * k * u.float().view(1, h, 1, 1, K)).sum(-1))
        y = torch.matmul(att, v)
        local = torch.matmul((k * torch.exp(cum[..., -1:, :] - cum)).transpose(-1, -2), v)  # (b, h, n, K, V)
        chunk_decay = torch.exp(cum[..., -1, :]).unsqueeze(-1)  # (b, h, n, K, 1)
        state = r.new_zeros(b, h, K, v.shape[-1])
        entering = []
        for i in range(n):
            entering.append(state)
            state = chunk_decay[:, :, i] * state + local[:, :, i]
        y = y + torch.matmul(r * torch.exp(excl), torch.stack(entering, dim=2))
        return y.reshape(b, h, n * C, -1)[:, :, :L]

    @staticmethod
    def recurrent(r, k, v, logw, u):
        """Step-by-step reference of WKV6 (for tests)."""
        b, h, L, K = r.shape
        state = r.new_zeros(b, h, K, v.shape[-1], dtype=torch.float32)
        ys = []
        for t in range(L):
            kv = k[:, :, t].float().unsqueeze(-1) * v[:, :, t].float().unsqueeze(-2)
            ys.append(torch.einsum("bhk,bhkv->bhv", r[:, :, t].float(), state + u.float().unsqueeze(-1) * kv))
            state = torch.exp(logw[:, :, t].float()).unsqueeze(-1) * state + kv
        return torch.stack(ys, dim=2)


class DDLerpLinear(GAUBase):
    """Data-dependent token-shift lerp + projection for one time-mix input.

    lerp_target is one of r, k, v, g, w. Y = P(X + delta * (mu + LoRA_mix(x_mix))). P is a linear map, or for the decay target w a
    tanh LoRA whose bias is the per-channel base decay."""

    CHILDREN = [UnitDecl("LoRA", desc="Low-rank tanh projection D -> r -> D")]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, lerp_target="r",
                 mix_lora_rank=32, decay_lora_rank=64, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        layer, n_layer = block_loc
        ratio_0_to_1 = layer / max(n_layer - 1, 1)
        ratio_1_to_0 = 1.0 - layer / n_layer
        ddd = torch.arange(embed_dim, dtype=torch.float32) / embed_dim
        power = 0.5 * ratio_1_to_0 if lerp_target in ("r", "g") else ratio_1_to_0
        mu = 1.0 - ddd.pow(power) - (0.3 * ratio_0_to_1 if lerp_target == "v" else 0.0)
        self.mu = nn.Parameter(mu.to(**fk))
        self.mix = LoRA(embed_dim, block_loc, kwarg_all, **fk, **{**kwarg_all, "lora_rank": mix_lora_rank})
        if lerp_target == "w":
            n = torch.arange(embed_dim, dtype=torch.float32)
            base = -6 + 5 * (n / max(embed_dim - 1, 1)).pow(0.7 + 1.3 * ratio_0_to_1)
            self.proj = LoRA(embed_dim, block_loc, kwarg_all, **fk,
                             **{**kwarg_all, "lora_rank": decay_lora_rank, "lora_bias": True})
            with torch.no_grad():
                self.proj.bias.copy_(base)
        else:
            self.proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)

    def _forward(self, X, delta, x_mix):
        mu_dyn, _ = self.mix(x_mix)
        xi = X + delta * (self.mu + mu_dyn)
        if isinstance(self.proj, LoRA):
            return self.proj(xi)[0], {}
        return self.proj(xi), {}


class LoRA(GAUBase):
    """Low-rank projection Y = tanh(X A) B (+ bias), A: D x lora_rank, B: lora_rank x D.
    Initialised small (A, B ~ U(-1e-2, 1e-2)) so it starts near zero but trains."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, lora_rank=32,
                 lora_bias=False, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.A = nn.Parameter(torch.empty(embed_dim, lora_rank, **fk).uniform_(-1e-2, 1e-2))
        self.B = nn.Parameter(torch.empty(lora_rank, embed_dim, **fk).uniform_(-1e-2, 1e-2))
        self.bias = nn.Parameter(torch.zeros(embed_dim, **fk)) if lora_bias else None

    def _forward(self, X, **Z):
        Y = torch.tanh(X @ self.A) @ self.B
        if self.bias is not None:
            Y = Y + self.bias
        return Y, {}


class RWKV6ChannelMix(GAUBase):
    """Finch channel-mix: token-shift, squared-ReLU MLP, sigmoid receptance gate.

    k = relu(W_k lerp_k(X))^2 (hidden rwkv_ffn_ratio x D),
    Y = sigmoid(LerpLinear_r(X)) * W_v k, lerps against the previous token."""

    CHILDREN = [UnitDecl("LerpLinear", desc="Token-shift lerp X + delta * mu then a linear map", inputs=["X", "delta"])]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, rwkv_ffn_ratio=3.5, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        layer, n_layer = block_loc
        ddd = torch.arange(embed_dim, dtype=torch.float32) / embed_dim
        self.mu_k = nn.Parameter((1.0 - ddd.pow(1.0 - layer / n_layer)).to(**fk))
        hidden = max(32, int(embed_dim * rwkv_ffn_ratio) // 32 * 32)
        self.key = nn.Linear(embed_dim, hidden, bias=False, **fk)
        self.value = nn.Linear(hidden, embed_dim, bias=False, **fk)
        self.receptance = LerpLinear(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    def _forward(self, X, **Z):
        delta = F.pad(X, (0, 0, 1, -1)) - X
        k = torch.relu(self.key(X + delta * self.mu_k)).square()
        r, _ = self.receptance(X, delta=delta)
        return torch.sigmoid(r) * self.value(k), Z


class LerpLinear(GAUBase):
    """Token-shift lerp then linear: Y = W (X + delta * mu), delta = previous token - X."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        layer, n_layer = block_loc
        ddd = torch.arange(embed_dim, dtype=torch.float32) / embed_dim
        self.mu = nn.Parameter((1.0 - ddd.pow(1.0 - layer / n_layer)).to(**fk))
        self.linear = nn.Linear(embed_dim, embed_dim, bias=False, **fk)

    def _forward(self, X, delta):
        return self.linear(X + delta * self.mu), {}


ROOT = "RWKV6"
CONFIG = {"rwkv_head_size": 64, "wkv_chunk": 16, "mix_lora_rank": 32, "decay_lora_rank": 64, "rwkv_ffn_ratio": 3.5}

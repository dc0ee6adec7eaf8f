"""TTT seed (Sun et al. 2024, "Learning to (Learn at Test Time)"), TTT-Linear with the Mamba
backbone: the hidden state is a per-head linear model W (with a LayerNorm and residual) that
is trained by one gradient step per mini-batch of tokens on a self-supervised
reconstruction loss, computed in the dual form; plus a causal conv before it and a SwiGLU
MLP after it."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from genesys.lmade import GAUBase, UnitDecl


class TTT(GAUBase):
    """TTT block: X + Conv(X); then + TTTLinear(RMSNorm(.)); then + SwiGluMLP(RMSNorm(.))."""

    CHILDREN = [
        UnitDecl("Conv", desc="Pre-norm causal depthwise conv (token mixing before the TTT layer)"),
        UnitDecl("TTTLinear", desc="Test-time-trained linear hidden state, dual-form mini-batch GD"),
        UnitDecl("SwiGluMLP", desc="SwiGLU feed-forward"),
        UnitDecl("RMSNorm", desc="Pre-norms"),
    ]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.conv = Conv(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.seq_norm = RMSNorm(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.ttt = TTTLinear(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.ffn_norm = RMSNorm(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.mlp = SwiGluMLP(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)

    def _forward(self, X, **Z):
        Y, Z = self.conv(X, **Z)
        X = X + Y
        H, Z = self.seq_norm(X, **Z)
        Y, Z = self.ttt(H, **Z)
        X = X + Y
        H, Z = self.ffn_norm(X, **Z)
        Y, Z = self.mlp(H, **Z)
        return X + Y, Z


class TTTLinear(GAUBase):
    """TTT-Linear: a linear hidden state trained by gradient descent on each mini-batch.

    Per head (size ttt_head_dim) the inner model is f(x) = x + LN(x W + b);
    its loss on token s is 0.5 ||LN(k_s W + b) - (v_s - k_s)||^2. Within a mini-batch of
    ttt_mini_batch tokens every token t uses W_t = W_0 - sum_{s<=t} eta_t,s grad_s(W_0)
    with eta_t,s = token_idx[t] * lr_s, lr_s = ttt_base_lr * sigmoid(x_s w_lr + b_lr) / head_dim
    (token_idx[t] = 1/(t+1) + learned offset); the last W_t starts the next mini-batch.
    Queries/keys get rotary phases by position within the mini-batch; output: LayerNorm,
    times GELU(gate), projected."""

    CHILDREN = [UnitDecl("RotaryEmbedding", desc="Rotary phase per head, position within the TTT mini-batch")]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, ttt_head_dim=64,
                 ttt_mini_batch=16, ttt_base_lr=1.0, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.head_dim = self.head_size(embed_dim, ttt_head_dim)
        self.n_heads = embed_dim // self.head_dim
        self.mini_batch = ttt_mini_batch
        self.base_lr = ttt_base_lr
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.g_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.o_proj = nn.Linear(embed_dim, embed_dim, bias=False, **fk)
        self.lr_proj = nn.Linear(embed_dim, self.n_heads, **fk)
        nn.init.normal_(self.lr_proj.weight, std=0.02)
        nn.init.zeros_(self.lr_proj.bias)
        self.register_buffer("token_idx", 1.0 / torch.arange(1, ttt_mini_batch + 1, dtype=torch.float32, device=device),
                             persistent=False)
        self.learnable_token_idx = nn.Parameter(torch.zeros(ttt_mini_batch, **fk))
        self.W1 = nn.Parameter(torch.randn(self.n_heads, self.head_dim, self.head_dim, **fk) * 0.02)
        self.b1 = nn.Parameter(torch.zeros(self.n_heads, 1, self.head_dim, **fk))
        self.ttt_norm_weight = nn.Parameter(torch.ones(self.n_heads, 1, self.head_dim, **fk))
        self.ttt_norm_bias = nn.Parameter(torch.zeros(self.n_heads, 1, self.head_dim, **fk))
        self.post_norm = nn.LayerNorm(embed_dim, eps=1e-6, **fk)
        rope = {**kwarg_all, "rope_head_dim": self.head_dim, "rope_period": ttt_mini_batch}
        self.rope = RotaryEmbedding(embed_dim, block_loc, kwarg_all, **fk, **rope)

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
        q, _ = self.rope(self.q_proj(X))
        k, _ = self.rope(self.k_proj(X))
        v = self.v_proj(X)
        q, k, v = (t.view(b, L, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        lr = self.base_lr * torch.sigmoid(self.lr_proj(X).float()).transpose(1, 2) / self.head_dim  # (b, h, L)
        token_idx = (self.token_idx + self.learnable_token_idx.float()).clamp(min=0.0)
        with torch.autocast(device_type=X.device.type, enabled=False):
            out = self.dual_form(q, k, v, lr, token_idx, self.W1, self.b1, self.ttt_norm_weight,
                                 self.ttt_norm_bias, self.mini_batch)
        out = out.to(X.dtype).transpose(1, 2).reshape(b, L, D)
        out = F.gelu(self.g_proj(X), approximate="tanh") * self.post_norm(out)
        return self.o_proj(out), Z

    @staticmethod
    def layer_norm(x, weight, bias, eps=1e-6):
        """LayerNorm over the last dim; returns (y, x_hat, std) so the backward can reuse them."""
        mu = x.mean(-1, keepdim=True)
        std = torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps)
        x_hat = (x - mu) / std
        return weight * x_hat + bias, x_hat, std

    @staticmethod
    def loss_grad(z, ln_b_minus_target, ln_w, eps=1e-6):
        """d/dz of 0.5 ||LN(z) - target||^2 (the LayerNorm backward written out); takes
        ln_bias - target, precomputed for all mini-batches."""
        zc = z - z.mean(-1, keepdim=True)
        rstd = torch.rsqrt(zc.square().mean(-1, keepdim=True) + eps)
        x_hat = zc * rstd
        g = torch.addcmul(ln_b_minus_target, x_hat, ln_w) * ln_w
        return (g - g.mean(-1, keepdim=True) - x_hat * (g * x_hat).mean(-1, keepdim=True)) * rstd

    @classmethod
    def dual_form(cls, q, k, v, lr, token_idx, W1, b1, ln_w, ln_b, mini_batch):
        """Inner-loop outputs q + LN(q W_t + b_t) for q, k, v (b, h, L, d), lr (b, h, L), in
        fp32. Everything that does not depend on W is computed for all mini-batches at once;
        the loop over mini-batches carries (W, b)."""
        b, h, L, d = q.shape
        q, k, v, lr = q.float(), k.float(), v.float(), lr.float()
        m = mini_batch
        pad = (-L) % m
        if pad:  # zero padding at the end cannot influence earlier positions
            q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
            lr = F.pad(lr, (0, pad))
        n = q.shape[2] // m
        ln_w, ln_b = ln_w.float().unsqueeze(0), ln_b.float().unsqueeze(0)  # (1, h, 1, d)
        q, k = (t.reshape(b, h, n, m, d) for t in (q, k))
        ln_b_minus_target = ln_b.unsqueeze(2) - (v.reshape(b, h, n, m, d) - k)
        eta = torch.tril(token_idx.view(m, 1) * lr.reshape(b, h, n, 1, m))  # (b, h, n, m[t], m[s])
        # per mini-batch: out = q W + b - (eta * q k^T + eta) grad; W -= (eta_last k)^T grad
        mix = eta * torch.matmul(q, k.transpose(-1, -2)) + eta
        k_last = (eta[..., -1, :].unsqueeze(-1) * k).transpose(-1, -2)  # (b, h, n, d, m)
        eta_last = eta[..., -1:, :]  # (b, h, n, 1, m)
        # (b, h) merged into one batch dim so each step is a few batched matmuls
        q, k, mix, k_last, eta_last, ln_b_minus_target = (
            t.movedim(2, 0).reshape(n, b * h, *t.shape[3:])
            for t in (q, k, mix, k_last, eta_last, ln_b_minus_target)
        )
        ln_w_bh = ln_w.expand(b, h, 1, d).reshape(b * h, 1, d)
        W = W1.float().unsqueeze(0).expand(b, h, d, d).reshape(b * h, d, d)
        bias = b1.float().unsqueeze(0).expand(b, h, 1, d).reshape(b * h, 1, d)
        outs = []
        for i in range(n):
            grad = cls.loss_grad(torch.baddbmm(bias, k[i], W), ln_b_minus_target[i], ln_w_bh)
            outs.append(torch.baddbmm(torch.baddbmm(bias, q[i], W), mix[i], grad, alpha=-1))
            W = torch.baddbmm(W, k_last[i], grad, alpha=-1)
            bias = torch.baddbmm(bias, eta_last[i], grad, alpha=-1)
        z = torch.stack(outs, dim=0).reshape(n, b, h, m, d).permute(1, 2, 0, 3, 4)  # (b, h, n, m, d)
        out = q.reshape(n, b, h, m, d).permute(1, 2, 0, 3, 4) + cls.layer_norm(z, ln_w.unsqueeze(2), ln_b.unsqueeze(2))[0]
        return out.reshape(b, h, n * m, d)[:, :, :L]

    @classmethod
    def recurrent(cls, q, k, v, lr, token_idx, W1, b1, ln_w, ln_b, mini_batch):
        """Token-by-token primal-form reference (for tests): per-token gradients by autograd,
        W_t = W_0 - token_idx[t] * sum_{s<=t} lr_s grad_s(W_0)."""
        b, h, L, d = q.shape
        W0 = W1.float().unsqueeze(0).expand(b, h, d, d).clone()
        b0 = b1.float().unsqueeze(0).expand(b, h, 1, d).clone()
        outs = []
        for start in range(0, L, mini_batch):
            gW, gb = torch.zeros_like(W0), torch.zeros_like(b0)
            Wr, br = W0.detach().requires_grad_(True), b0.detach().requires_grad_(True)
            for t in range(start, min(start + mini_batch, L)):
                ks, vs = k[:, :, t:t + 1].float(), v[:, :, t:t + 1].float()
                y = cls.layer_norm(torch.matmul(ks, Wr) + br, ln_w.float(), ln_b.float())[0]
                loss = 0.5 * (y - (vs - ks)).pow(2).sum(-1)
                dW, db = torch.autograd.grad(loss.sum(), (Wr, br))
                step = lr[:, :, t].float().view(b, h, 1, 1)
                gW, gb = gW + step * dW, gb + step * db
                Wt = W0 - token_idx[t - start] * gW
                bt = b0 - token_idx[t - start] * gb
                z = torch.matmul(q[:, :, t:t + 1].float(), Wt) + bt
                outs.append(q[:, :, t:t + 1].float() + cls.layer_norm(z, ln_w.float(), ln_b.float())[0])
            W0, b0 = Wt, bt
        return torch.cat(outs, dim=2)


class RotaryEmbedding(GAUBase):
    """Rotary phase applied to each rope_head_dim slice of X.

    Rotate-half layout; the position of token t is t mod rope_period (TTT restarts positions every mini-batch)."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, rope_head_dim=64,
                 rope_period=16, rope_base=10000.0, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.head_dim = rope_head_dim
        self.period = rope_period
        inv_freq = 1.0 / rope_base ** (torch.arange(0, rope_head_dim, 2, dtype=torch.float32) / rope_head_dim)
        self.register_buffer("inv_freq", inv_freq.to(device), persistent=False)

    def _forward(self, X, **Z):
        b, L, D = X.shape
        pos = torch.arange(L, device=X.device, dtype=torch.float32) % self.period
        ang = torch.outer(pos, self.inv_freq).unsqueeze(1)  # (L, 1, d/2)
        cos, sin = ang.cos().to(X.dtype), ang.sin().to(X.dtype)
        x = X.view(b, L, D // self.head_dim, self.head_dim)
        x1, x2 = x[..., : self.head_dim // 2], x[..., self.head_dim // 2:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).view(b, L, D), Z


class Conv(GAUBase):
    """RMSNorm then a causal depthwise conv over time (kernel ttt_conv_kernel)."""

    CHILDREN = [UnitDecl("RMSNorm", desc="Norm before the conv")]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, ttt_conv_kernel=4, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        self.norm = RMSNorm(embed_dim, block_loc, kwarg_all, **fk, **kwarg_all)
        self.conv = nn.Conv1d(embed_dim, embed_dim, ttt_conv_kernel, groups=embed_dim,
                              padding=ttt_conv_kernel - 1, **fk)

    def _forward(self, X, **Z):
        H, Z = self.norm(X, **Z)
        return self.conv(H.transpose(1, 2))[..., : X.shape[1]].transpose(1, 2), Z


class SwiGluMLP(GAUBase):
    """W_down(SiLU(W_gate X) * W_up X), hidden = ttt_mlp_ratio x width (rounded to 16)."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, ttt_mlp_ratio=2.6667, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        fk = {"device": device, "dtype": dtype}
        hidden = max(16, int(embed_dim * ttt_mlp_ratio) // 16 * 16)
        self.gate_up = nn.Linear(embed_dim, 2 * hidden, bias=False, **fk)
        self.down = nn.Linear(hidden, embed_dim, bias=False, **fk)

    def _forward(self, X, **Z):
        gate, up = self.gate_up(X).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up), Z


class RMSNorm(GAUBase):
    """Root-mean-square layer norm with a learned scale."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, eps=1e-6, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.weight = nn.Parameter(torch.ones(embed_dim, device=device, dtype=dtype))
        self.eps = eps

    def _forward(self, X, **Z):
        Xf = X.float()
        Y = Xf * torch.rsqrt(Xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return Y.to(X.dtype) * self.weight.to(X.dtype), Z


ROOT = "TTT"
CONFIG = {"ttt_head_dim": 64, "ttt_mini_batch": 16, "ttt_base_lr": 1.0, "ttt_conv_kernel": 4, "ttt_mlp_ratio": 2.6667}

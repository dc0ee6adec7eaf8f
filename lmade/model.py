"""A full language model around a design: embedding, N design blocks, norm, tied head."""

from __future__ import annotations

import math
from typing import Any

import torch
from genesys.design import Design, DesignFormatError
from torch import nn

from .scales import Scale, get_scale

RESERVED_CONFIG_KEYS = frozenset({"embed_dim", "block_loc", "kwarg_all", "device", "dtype"})
# Linear layers under these attribute names write into the residual stream; GPT-2 scales
# their init by 1/sqrt(2 n_block) so the residual variance stays flat with depth.
RESIDUAL_OUTPUT_NAMES = frozenset({"out_proj", "o_proj", "c_proj", "down_proj", "fc2"})
TUNE_TOLERANCE = 0.10


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5, device: Any = None, dtype: Any = None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class GenesysLM(nn.Module):
    """Token embedding -> n_block copies of the design's root unit -> RMSNorm -> tied head.

    The auxiliary dict Z is threaded through all blocks, as in the paper.
    """

    def __init__(
        self,
        design: Design,
        d_model: int,
        n_block: int,
        vocab_size: int,
        context: int,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        reserved = RESERVED_CONFIG_KEYS & set(design.config)
        if reserved:
            raise DesignFormatError(f"CONFIG must not set reserved keys {sorted(reserved)}")
        self.design_name, self.digest = design.name, design.digest
        self.d_model, self.n_block, self.vocab_size, self.context = d_model, n_block, vocab_size, context
        root_cls = design.root_class()
        fk = {"device": device, "dtype": dtype}
        self.embedding = nn.Embedding(vocab_size, d_model, **fk)
        self.blocks = nn.ModuleList(
            root_cls(d_model, (i, n_block), dict(design.config), **fk, **design.config)
            for i in range(n_block)
        )
        self.norm = RMSNorm(d_model, **fk)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False, **fk)
        self.lm_head.weight = self.embedding.weight
        self._init_weights()

    def _init_weights(self) -> None:
        residual_std = 0.02 / math.sqrt(2 * self.n_block)
        with torch.no_grad():
            for name, module in self.named_modules():
                if isinstance(module, nn.Linear):
                    leaf = name.rsplit(".", 1)[-1]
                    std = residual_std if leaf in RESIDUAL_OUTPUT_NAMES else 0.02
                    nn.init.normal_(module.weight, 0.0, std)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
                elif isinstance(module, nn.Embedding):
                    nn.init.normal_(module.weight, 0.0, 0.02)
            # Units with special parameters (decays, state matrices) re-initialise them.
            for module in self.modules():
                hook = getattr(type(module), "init_weights", None)
                if callable(hook) and module is not self:
                    module.init_weights()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        X = self.embedding(input_ids)
        Z: dict[str, Any] = {}
        for block in self.blocks:
            X, Z = block(X, **Z)
        return self.lm_head(self.norm(X))


def count_params(model: nn.Module, non_embedding: bool = True) -> int:
    """Parameters counted once each (the tied head is the embedding)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    if non_embedding:
        total -= sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding))
    return total


def build_lm(
    design: Design,
    scale: str | Scale,
    vocab_size: int,
    d_model: int | None = None,
    n_block: int | None = None,
    device: Any = None,
    dtype: Any = None,
    context: int | None = None,
) -> GenesysLM:
    """Build the LM for a design at a scale; (d_model, n_block) are auto-tuned if omitted,
    and the context length defaults to the scale's."""
    rung = get_scale(scale)
    if d_model is None or n_block is None:
        d_model, n_block = autotune(design, rung, vocab_size)
    return GenesysLM(
        design, d_model, n_block, vocab_size, context or rung.context, device=device, dtype=dtype
    )


def design_params(design: Design, d_model: int, n_block: int, root_cls: type | None = None) -> int | None:
    """Non-embedding parameters at a shape, built on the meta device (no memory, no math).

    None when the design cannot be built at that shape (e.g. heads do not divide d_model).
    """
    try:
        cls = root_cls or design.root_class()  # executes the design: once, not per block
        with torch.device("meta"):
            blocks = nn.ModuleList(
                cls(d_model, (i, n_block), dict(design.config), **design.config)
                for i in range(n_block)
            )
    except Exception:  # any failure means "not buildable at this shape"
        return None
    return count_params(blocks, non_embedding=False) + d_model  # + final norm


def autotune(design: Design, scale: str | Scale, vocab_size: int, step: int = 8) -> tuple[int, int]:
    """(d_model, n_block) whose non-embedding size is within 10 % of the rung's target.

    Depth stays at the rung's n_block when possible (then one block more or less, and so
    on); for each depth the width is searched over multiples of ``step`` (so head counts
    that divide the width keep dividing it), taking the closest buildable size.
    """
    del vocab_size  # embedding size does not enter the non-embedding target
    rung = get_scale(scale)
    target = rung.target_params
    root_cls = design.root_class()
    best: tuple[float, int, int] | None = None
    for n in _depths(rung.n_block):
        d = _closest_width(design, root_cls, n, target, step, rung.d_model)
        if d is None:
            continue
        params = design_params(design, d, n, root_cls)
        err = abs(params - target) / target
        if best is None or err < best[0]:
            best = (err, d, n)
        if err <= TUNE_TOLERANCE:
            return d, n
    got = f"closest: d_model={best[1]}, n_block={best[2]} ({best[0]:.0%} off)" if best else "no shape builds"
    raise ValueError(f"cannot size design {design.name!r} to {rung.name} ({target:,} params); {got}")


def _depths(n0: int) -> list[int]:
    order = [n0]
    for k in range(1, n0 + 1):
        order += [n for n in (n0 - k, n0 + k) if n >= 1]
    return order


def _closest_width(design: Design, root_cls: type, n: int, target: int, step: int, d0: int) -> int | None:
    """Binary search over widths (params grow with width), skipping unbuildable widths."""
    lo, hi = 1, max(4 * d0 // step, 8)

    def params_at(k: int) -> int | None:
        for probe in (k, k + 1, k - 1, k + 2, k - 2):  # nearest buildable width
            if probe >= 1:
                p = design_params(design, probe * step, n, root_cls)
                if p is not None:
                    return p
        return None

    if params_at(hi) is None or params_at(hi) < target * (1 - TUNE_TOLERANCE):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        p = params_at(mid)
        if p is not None and p < target:
            lo = mid
        else:
            hi = mid
    candidates = [k * step for k in range(max(lo - 2, 1), hi + 3)]
    sized = [(abs(p - target), d) for d in candidates if (p := design_params(design, d, n, root_cls))]
    return min(sized)[1] if sized else None

"""The GAU protocol: every unit maps (X, **Z) -> (Y, Z') with Y shaped like X."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from genesys.design import UnitDecl
from torch import nn


class GAUShapeError(ValueError):
    """A unit received or produced a tensor that breaks the (B, L, D) contract."""


class GAUBase(nn.Module):
    """Base class of every generalized autoregressive unit.

    Subclasses implement ``_forward(self, X, **Z) -> (Y, Z_updates)``. ``forward`` checks
    that X is (B, L, embed_dim) and that Y keeps X's shape and dtype, hands ``_forward``
    only the Z entries its signature names (all of them when it takes ``**kwargs``), and
    returns Y together with Z updated by what ``_forward`` returned.
    """

    CHILDREN: ClassVar[list[UnitDecl]] = []

    def __init__(self, embed_dim: int, block_loc: tuple[int, int], kwarg_all: dict[str, Any]):
        super().__init__()
        self.embed_dim = embed_dim
        self.block_loc = tuple(block_loc)
        self.kwarg_all = kwarg_all

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_forward" in cls.__dict__:
            cls._z_keys, cls._z_all = _named_z_keys(cls.__dict__["_forward"])

    _z_keys: ClassVar[tuple[str, ...]] = ()
    _z_all: ClassVar[bool] = True

    def _forward(self, X: torch.Tensor, **Z: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def forward(self, X: torch.Tensor, **Z: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        name = type(self).__name__
        if X.dim() != 3 or X.shape[-1] != self.embed_dim:
            raise GAUShapeError(
                f"{name} expects X of shape (batch, seq_len, {self.embed_dim}), got {tuple(X.shape)}"
            )
        if self._z_all:
            given = Z
        else:
            given = {k: Z[k] for k in self._z_keys if k in Z}
        out = self._forward(X, **given)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            raise GAUShapeError(f"{name}._forward must return (Y, Z_dict), got {type(out).__name__}")
        Y, updates = out
        if not isinstance(Y, torch.Tensor) or Y.shape != X.shape:
            shape = tuple(Y.shape) if isinstance(Y, torch.Tensor) else type(Y).__name__
            raise GAUShapeError(f"{name} must return Y shaped like X {tuple(X.shape)}, got {shape}")
        if Y.dtype != X.dtype and not _autocast_output(X, Y):
            raise GAUShapeError(f"{name} changed the dtype from {X.dtype} to {Y.dtype}")
        if not updates:
            return Y, Z
        return Y, {**Z, **updates}


def _autocast_output(X: torch.Tensor, Y: torch.Tensor) -> bool:
    """Under autocast a unit may return the autocast dtype (e.g. its last op is a Linear)."""
    kind = X.device.type
    return torch.is_autocast_enabled(kind) and Y.dtype == torch.get_autocast_dtype(kind)


def _named_z_keys(fn: Any) -> tuple[tuple[str, ...], bool]:
    params = list(inspect.signature(fn).parameters.values())[2:]  # skip self, X
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    names = tuple(
        p.name for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )
    return names, takes_all

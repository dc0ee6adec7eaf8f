"""LMADE: the GAU protocol, designs, seeds, scales, checker, trainer and evaluator.

Names are imported on first use (PEP 562), so that torch-free processes (the GPU agent's
parent, which only needs ``genesys.lmade.sandbox``) can import submodules without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Design": "genesys.design",
    "DesignFormatError": "genesys.design",
    "Unit": "genesys.design",
    "UnitDecl": "genesys.design",
    "load_design": "genesys.design",
    "GAUBase": ".gau",
    "GAUShapeError": ".gau",
    "GenesysLM": ".model",
    "autotune": ".model",
    "build_lm": ".model",
    "count_params": ".model",
    "LADDER": ".scales",
    "SCALES": ".scales",
    "Scale": ".scales",
    "get_scale": ".scales",
    "CheckReport": ".checker",
    "CheckSettings": ".checker",
    "check": ".checker",
    "TrainConfig": ".trainer",
    "TrainResult": ".trainer",
    "train": ".trainer",
    "evaluate": ".evaluator",
    "verify": ".verify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

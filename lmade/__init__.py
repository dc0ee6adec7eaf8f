"""LMADE: the GAU protocol, designs, seeds, scales, checker, trainer and evaluator.

Names are imported on first use (PEP 562), so that torch-free processes (the GPU agent's
parent, which only needs ``genesys.lmade.sandbox``) can import submodules without torch.
Submodules are reachable as attributes too (``lmade.seeds.get("gpt")``), imported on first
access.
"""

from __future__ import annotations

import importlib
import pkgutil
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


def _submodules() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(__path__)}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
    elif not name.startswith("_") and name in _submodules():
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _submodules())

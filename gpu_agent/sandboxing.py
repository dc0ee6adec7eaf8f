"""The checker's sandbox (genesys.lmade.sandbox) without importing torch.

``genesys.lmade/__init__`` imports torch, but ``sandbox.py`` itself only needs the standard
library, so the agent's parent process loads that one file under its usual module name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "genesys.lmade.sandbox"


def _load() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    package = importlib.util.find_spec("genesys.lmade")  # finds the folder, runs nothing
    if package is None or not package.submodule_search_locations:
        raise ImportError("genesys.lmade is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "sandbox.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


sandbox = _load()
Limits = sandbox.Limits
SandboxResult = sandbox.SandboxResult
run_sandboxed = sandbox.run_sandboxed

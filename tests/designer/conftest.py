"""Designs for the designer tests: the installed seeds (as text) and two small synthetic trees."""

from __future__ import annotations

import pytest
from genesys.design import Design, load_design
from genesys.designer.job import seed_sources

HEADER = "import torch\nfrom genesys.lmade import GAUBase, UnitDecl\n"
INIT = "def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None{extra}, **kwargs):"


def unit(name: str, children: tuple[str, ...] = (), body: str = "return X, {}", extra: str = "") -> str:
    decls = ", ".join(f'UnitDecl("{c}")' for c in children)
    inits = "".join(
        f"\n        self.{c.lower()} = {c}(embed_dim, block_loc, kwarg_all, **kwarg_all)" for c in children
    )
    return (
        f"class {name}(GAUBase):\n    CHILDREN = [{decls}]\n\n    {INIT.format(extra=extra)}\n"
        f"        super().__init__(embed_dim, block_loc, kwarg_all){inits}\n\n"
        f"    def _forward(self, X, **Z):\n        {body}\n"
    )


def design(root: str, units: list[str], config: str = "{}") -> Design:
    return load_design(HEADER + "\n\n".join(units) + f"\nROOT = {root!r}\nCONFIG = {config}\n")


@pytest.fixture
def seeds() -> dict[str, Design]:
    return {n: load_design(s, name=n) for n, s in seed_sources().items()}


@pytest.fixture
def block_a() -> Design:
    """Block -> Mixer, Norm; Mixer -> Norm, Helper."""
    return design("Block", [
        unit("Block", ("Mixer", "Norm")),
        unit("Mixer", ("Norm", "Helper"), extra=", heads=4"),
        unit("Norm", body="return X * 1.0, {}"),
        unit("Helper", body="return X + 1, {}"),
    ], '{"heads": 4}')


@pytest.fixture
def block_b() -> Design:
    """Block -> Attn; Attn -> Norm (same code as A's), Helper (different code), Inner."""
    return design("Block", [
        unit("Block", ("Attn",)),
        unit("Attn", ("Norm", "Helper", "Inner"), extra=", width=3, heads=2"),
        unit("Norm", body="return X * 1.0, {}"),
        unit("Helper", body="return X + 2, {}"),
        unit("Inner", body="return Helper.twice(X), {}"),
    ], '{"width": 3, "heads": 2}')


from .llm_procs import coordinator, scripted, scripted_service  # noqa: E402,F401 - LLM designer tests

"""The seed designs that start every evolution tree, shipped as design files.

Seeds are read as text (``source(name)``) by processes that must not run design code, and
parsed into Designs by ``get(name)``.
"""

from __future__ import annotations

from importlib import resources

from genesys.design import Design, load_design

# name -> design file in this folder
SEED_FILES: dict[str, str] = {
    "gpt": "gpt.py",
    "mamba2": "mamba2.py",
    "retnet": "retnet.py",
    "rwkv6": "rwkv6.py",
    "ttt": "ttt.py",
}


def names() -> list[str]:
    return list(SEED_FILES)


def source(name: str) -> str:
    if name not in SEED_FILES:
        raise KeyError(f"unknown seed {name!r}; seeds: {', '.join(SEED_FILES)}")
    return resources.files(__name__).joinpath(SEED_FILES[name]).read_text()


def get(name: str) -> Design:
    return load_design(source(name), name=name)

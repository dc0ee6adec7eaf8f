"""Seed designs read as text from the installed genesys.lmade seed files (never imported:
the coordinator must not import torch or run design code)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from genesys.v1 import evolution_pb2

from .errors import InvalidArgument
from .gau_text import parse_source


def default_seeds_dir() -> Path | None:
    """lmade/seeds of the installed package, located without importing genesys.lmade."""
    spec = importlib.util.find_spec("genesys.lmade")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "seeds"


def available(seeds_dir: Path | None) -> list[str]:
    if seeds_dir is None or not seeds_dir.is_dir():
        return []
    return sorted(p.stem for p in seeds_dir.glob("*.py") if not p.stem.startswith("_"))


def load_seeds(names: list[str], seeds_dir: Path | None) -> list[evolution_pb2.SeedDesign]:
    """SeedDesigns (source, static tree, digest) for the named seeds."""
    known = available(seeds_dir)
    seeds = []
    for i, name in enumerate(names):
        if name not in known:
            raise InvalidArgument(f"config.seeds[{i}]",
                                  f"unknown seed {name!r} (available: {', '.join(known) or 'none'})")
        source = (seeds_dir / f"{name}.py").read_text()
        design = parse_source(source, name, field=f"config.seeds[{i}]")
        seeds.append(evolution_pb2.SeedDesign(name=name, source=source, tree=design.to_proto(),
                                              digest=design.digest))
    return seeds

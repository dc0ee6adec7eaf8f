"""`genesys design info`: the unit tree, digest and tuned size of a design at every scale."""

from __future__ import annotations

import json
from typing import Any

import click
from genesys.design import Design, DesignFormatError, load_design

from .scales import SCALES


def resolve_design(file_or_seed: str) -> tuple[Design, bool]:
    """A design from a file path or a seed name, and whether it is a (trusted) seed."""
    from . import seeds

    if file_or_seed in seeds.names():
        return seeds.get(file_or_seed), True
    if not file_or_seed.endswith(".py"):
        raise click.BadParameter(
            f"{file_or_seed!r} is neither a seed ({', '.join(seeds.names())}) nor a .py design file"
        )
    try:
        return load_design(file_or_seed), False
    except DesignFormatError as e:
        raise click.ClickException(f"{file_or_seed}: {e}") from None


def tuned_sizes(payload: dict[str, Any], on_event: Any = None) -> dict[str, Any]:
    """Sandbox entry point: tuned (d_model, n_block, params) of a design at every scale."""
    from .model import autotune, design_params

    design = load_design(payload["source"], name=payload.get("name"))
    sizes: dict[str, Any] = {}
    for name, rung in SCALES.items():
        try:
            d_model, n_block = autotune(design, rung, payload.get("vocab_size", 8192))
        except ValueError as e:
            sizes[name] = {"error": str(e)}
            continue
        sizes[name] = {
            "d_model": d_model,
            "n_block": n_block,
            "params": design_params(design, d_model, n_block),
            "target_params": rung.target_params,
        }
    return sizes


def _sizes(design: Design, trusted: bool) -> dict[str, Any]:
    payload = {"source": design.to_source(), "name": design.name}
    if trusted:
        return tuned_sizes(payload)
    from .sandbox import Limits, run_sandboxed

    result = run_sandboxed("genesys.lmade.cli:tuned_sizes", payload, Limits(wall_s=120))
    if not result.ok:
        raise click.ClickException(f"sizing the design failed: {result.error}")
    return result.value


@click.command("info")
@click.argument("file_or_seed")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def design_info(file_or_seed: str, as_json: bool) -> None:
    """Show a design's unit tree, digest and tuned size at every scale.

    FILE_OR_SEED is a design file (.py) or a seed name. A file's code runs only in the
    sandbox, to size it.
    """
    design, trusted = resolve_design(file_or_seed)
    sizes = _sizes(design, trusted)
    if as_json:
        info = {
            "name": design.name,
            "digest": design.digest,
            "root": design.root,
            "config": design.config,
            "units": {
                u.name: {"children": [c.name for c in u.children], "desc": u.desc}
                for u in design.units.values()
            },
            "scales": sizes,
        }
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"design {design.name}  digest {design.digest[:16]}")
    click.echo("\n".join(design.tree_lines()))
    click.echo(f"\n{'scale':<7} {'d_model':>7} {'n_block':>7} {'params':>13} {'target':>13}")
    for name, s in sizes.items():
        if "error" in s:
            click.echo(f"{name:<7} {s['error']}")
        else:
            click.echo(f"{name:<7} {s['d_model']:>7} {s['n_block']:>7} {s['params']:>13,} {s['target_params']:>13,}")

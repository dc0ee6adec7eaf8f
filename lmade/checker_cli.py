"""``genesys check FILE_OR_SEED``: run the symbolic checker on a design file or a seed.
``genesys check --isolation``: which sandbox layers this host enforces."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def print_isolation(as_json: bool) -> None:
    """The sandbox layers this host enforces and the ones it lacks; exit 1 without the jail."""
    import json

    from genesys.lmade.sandbox import isolation

    iso = isolation()
    if as_json:
        click.echo(json.dumps({"jail": iso.jail, **iso.describe()}))
    else:
        for layer in iso.enforced:
            click.echo(f"ok      {layer}")
        for layer in iso.missing:
            click.echo(f"MISSING {layer}")
        click.echo("design code is jailed" if iso.jail else
                   "design code is NOT jailed here: only the audit hook and rlimits hold it")
    sys.exit(0 if iso.jail else 1)


@click.command("check")
@click.argument("design", required=False)
@click.option("--isolation", "isolation_only", is_flag=True,
              help="Print which sandbox layers this host enforces (exit 1 without the jail).")
@click.option("--scale", default="check", show_default=True,
              help="Size to check at: check, micro, tiny, 14M ... (see genesys.lmade.SCALES).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Wall-clock limit in seconds for the sandboxed checks (default 120).")
def check_cmd(design: str | None, isolation_only: bool, scale: str, as_json: bool,
              timeout: float | None) -> None:
    """Check DESIGN (a design file or a seed name); exit 0 if valid, 1 if not."""
    if isolation_only:
        print_isolation(as_json)
    if design is None:
        raise click.UsageError("give a DESIGN (a design file or a seed name), or --isolation")
    from genesys.lmade import seeds
    from genesys.lmade.checker import check, default_limits
    from genesys.lmade.scales import SCALES

    if scale not in SCALES:
        raise click.BadParameter(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}",
                                 param_hint="--scale")
    if design not in seeds.names() and not Path(design).is_file():
        raise click.BadParameter(f"{design!r} is neither a design file nor a seed "
                                 f"({', '.join(seeds.names())})", param_hint="DESIGN")
    target = design if design in seeds.names() else Path(design)
    report = check(target, scale=scale, limits=default_limits(timeout))
    if as_json:
        click.echo(report.to_json())
    else:
        for c in report.checks:
            mark = "ok  " if c.passed else "FAIL"
            click.echo(f"{mark} {c.name:<17} {c.message}")
            if c.warning:
                click.echo(f"     {'':<17} warning: {c.warning}")
        verdict = "VALID" if report.valid else "INVALID"
        click.echo(f"{verdict} design={report.design} digest={report.digest[:16]} "
                   f"params={report.params} seconds={report.seconds}")
    sys.exit(0 if report.valid else 1)

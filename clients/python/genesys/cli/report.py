"""`genesys report`: fetch an experiment from the coordinator and write its report folder."""

from __future__ import annotations

import json

import click

from .coordinator_opts import coordinator_command, json_option


def pick_experiment(client, name: str | None) -> str:
    """The named experiment, else the only or most recently updated one."""
    if name:
        return name
    exps = client.list_experiments()
    if not exps:
        raise click.UsageError("the coordinator has no experiments; create one or pass --experiment")
    latest = max(exps, key=lambda e: (e.updated_at.ToNanoseconds(), e.created_at.ToNanoseconds()))
    return latest.name


@click.command("report")
@click.option("--experiment", "-e", default=None, help="Experiment (default: the most recently updated).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Output folder (default: ./genesys-report/<experiment>).")
@click.option("--top", default=20, show_default=True, help="Leaderboard rows in the HTML page.")
@json_option
@coordinator_command
def report_cmd(client, experiment: str | None, out_dir: str | None, top: int, as_json: bool) -> None:
    """Write PNG plots (fitness over time, quadrants, lineage, Pareto front) and an HTML page
    with the leaderboard; print the rank correlation of the designs' scores between rungs."""
    from genesys.report import fetch_designs, write_report
    from genesys.report_stats import rung_correlations

    name = pick_experiment(client, experiment)
    designs = fetch_designs(client, name)
    ladder = [r.name for r in client.get_experiment(name).config.ladder.rungs]
    try:
        files = write_report(designs, out_dir or f"genesys-report/{name}", name, top)
    except RuntimeError as e:  # matplotlib missing
        raise click.ClickException(str(e)) from None
    correlations = rung_correlations(designs, ladder)
    if as_json:
        click.echo(json.dumps({"experiment": name, **{k: str(v) for k, v in files.items()},
                               "rung_correlations": [c.to_dict() for c in correlations]}, indent=2))
        return
    click.echo(f"report of {name}: {files['html']}")
    for c in correlations:
        click.echo(f"rank correlation {c.low} -> {c.high} ({c.metric}, {c.n} designs): "
                   f"{c.rho:.2f} [{c.ci_low:.2f}, {c.ci_high:.2f}]")
    if not correlations:
        click.echo("rank correlation between rungs: fewer than 4 designs verified on two rungs")

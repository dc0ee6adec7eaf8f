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
    """Write PNG plots (fitness over time, quadrants, lineage) and an HTML page with the leaderboard."""
    from genesys.report import fetch_report

    name = pick_experiment(client, experiment)
    try:
        files = fetch_report(client, name, out_dir or f"genesys-report/{name}", top)
    except RuntimeError as e:  # matplotlib missing
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps({"experiment": name, **{k: str(v) for k, v in files.items()}}, indent=2))
    else:
        click.echo(f"report of {name}: {files['html']}")

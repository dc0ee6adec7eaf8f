"""`genesys experiment create|list|show`, `genesys leaderboard`."""

from __future__ import annotations

import click

from .coordinator_opts import coordinator_command, emit, enum_name, json_option


@click.command("create")
@click.argument("name")
@click.option("--ladder", default="", help='Rungs and budgets, e.g. "micro:8,tiny:2" '
              "(default: 14M:256,31M:64,70M:16,125M:4,350M:1).")
@click.option("--seed", "seeds", multiple=True, help="Seed design (repeatable; default: all).")
@click.option("--description", default="")
@click.option("--config-json", "config_json", default="", help="Full ExperimentConfig as JSON.")
@json_option
@coordinator_command
def create_cmd(client, name: str, ladder: str, seeds: tuple[str, ...], description: str,
               config_json: str, as_json: bool) -> None:
    """Create an experiment (registers its seed designs)."""
    from google.protobuf.json_format import Parse, ParseError

    from genesys.v1 import experiment_pb2

    config = experiment_pb2.ExperimentConfig()
    if config_json:
        try:
            Parse(config_json, config)
        except ParseError as e:
            raise click.BadParameter(str(e), param_hint="--config-json") from None
    exp = client.create_experiment(name, config, description, ladder, seeds)
    emit(exp, as_json, lambda: [f"created experiment {exp.name} with {exp.stats.designs} seed designs"])


@click.command("update")
@click.argument("name")
@click.option("--state", default="", type=click.Choice(["", "active", "paused", "finished"]),
              help="Paused experiments lease no new jobs.")
@click.option("--config-json", "config_json", default="",
              help="Replace the config (a full ExperimentConfig as JSON; bumps its version).")
@json_option
@coordinator_command
def update_cmd(client, name: str, state: str, config_json: str, as_json: bool) -> None:
    """Change an experiment's state or replace its config (admin)."""
    from google.protobuf.json_format import Parse, ParseError

    from genesys.v1 import experiment_pb2

    if not state and not config_json:
        raise click.UsageError("nothing to change: give --state and/or --config-json")
    config = None
    if config_json:
        config = experiment_pb2.ExperimentConfig()
        try:
            Parse(config_json, config)
        except ParseError as e:
            raise click.BadParameter(str(e), param_hint="--config-json") from None
    exp = client.update_experiment(name, config, state)
    emit(exp, as_json, lambda: _experiment_lines(exp))


def _experiment_lines(exp):
    from genesys.v1 import experiment_pb2

    state = enum_name(experiment_pb2.ExperimentState, exp.state, "EXPERIMENT_STATE_")
    ladder = ",".join(f"{r.name}:{r.budget}" for r in exp.config.ladder.rungs)
    s = exp.stats
    yield (f"{exp.name:<24} {state:<9} v{exp.config_version:<3} designs={s.designs} "
           f"verified={s.verified_designs} jobs={s.queued_jobs}q/{s.leased_jobs}l ladder={ladder}")


@click.command("list")
@json_option
@coordinator_command
def list_cmd(client, as_json: bool) -> None:
    """List experiments."""
    exps = client.list_experiments()
    emit(exps, as_json, lambda: [line for e in exps for line in _experiment_lines(e)])


@click.command("show")
@click.argument("name")
@json_option
@coordinator_command
def show_cmd(client, name: str, as_json: bool) -> None:
    """Show an experiment and its config."""
    from google.protobuf import text_format

    exp = client.get_experiment(name)
    emit(exp, as_json, lambda: [*_experiment_lines(exp), text_format.MessageToString(exp.config)])


@click.command("leaderboard")
@click.argument("experiment")
@click.option("--rung", default="", help="Rank by this rung's results (default: fitness).")
@click.option("--limit", default=20, show_default=True)
@json_option
@coordinator_command
def leaderboard_cmd(client, experiment: str, rung: str, limit: int, as_json: bool) -> None:
    """Designs ranked by fitness (or by one rung's benchmark scores)."""
    from genesys.v1 import design_pb2

    entries = client.leaderboard(experiment, rung, limit)
    emit(entries, as_json, lambda: [
        f"{e.rank:>3} {e.design_id:<14} {e.name[:28]:<28} score={e.score:.4f} "
        f"fitness={e.fitness:.4f} conf={e.confidence} "
        f"{enum_name(design_pb2.Quadrant, e.quadrant, 'QUADRANT_')}" for e in entries])

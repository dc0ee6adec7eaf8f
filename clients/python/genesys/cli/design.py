"""`genesys design submit|list|show|lineage` (the evolution tree on the coordinator)."""

from __future__ import annotations

from pathlib import Path

import click

from .coordinator_opts import coordinator_command, emit, enum_name, json_option


def _line(d) -> str:
    from genesys.v1 import design_pb2

    state = enum_name(design_pb2.DesignState, d.state, "DESIGN_STATE_")
    rungs = ",".join(r.rung for r in d.results) or "-"
    return (f"{d.id:<14} {d.name[:28]:<28} {state:<11} fitness={d.fitness:.4f} "
            f"conf={d.confidence} rungs={rungs} parents={','.join(d.parents) or '-'}")


@click.command("submit")
@click.argument("experiment")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default="", help="Design name (default: the file name).")
@click.option("--parent", "parents", multiple=True, help="Parent design id (repeatable).")
@json_option
@coordinator_command
def submit_cmd(client, experiment: str, file: Path, name: str, parents: tuple[str, ...],
               as_json: bool) -> None:
    """Submit a single-file design (parsed by the coordinator, never executed)."""
    design = client.submit_design(experiment, source=file.read_text(), name=name or file.stem,
                                  parents=parents)
    emit(design, as_json, lambda: [f"submitted {design.id} digest={design.digest[:16]}"])


@click.command("list")
@click.argument("experiment")
@click.option("--state", default="", type=click.Choice(["", "proposed", "implemented",
                                                          "verified", "failed"]))
@click.option("--rung", "verified_rung", default="", help="Only designs verified at this rung.")
@click.option("--parent", default="", help="Only children of this design.")
@click.option("--limit", default=100, show_default=True)
@json_option
@coordinator_command
def list_cmd(client, experiment: str, state: str, verified_rung: str, parent: str, limit: int,
             as_json: bool) -> None:
    """List the designs of an experiment."""
    designs = client.list_designs(experiment, state=state, verified_rung=verified_rung,
                                  parent=parent, limit=limit)
    emit(designs, as_json, lambda: [_line(d) for d in designs])


@click.command("show")
@click.argument("design_id")
@click.option("--source", "show_source", is_flag=True, help="Print the design source.")
@json_option
@coordinator_command
def show_cmd(client, design_id: str, show_source: bool, as_json: bool) -> None:
    """Show one design: tree, results and (with --source) its code."""

    def text():
        yield _line(d)
        yield f"digest {d.digest}"
        for unit in d.tree.units:
            children = ", ".join(c.name for c in unit.children)
            yield f"  unit {unit.name}" + (f" -> {children}" if children else "")
        for r in d.results:
            metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted(r.metrics.items()))
            yield f"  result {r.rung}: {metrics}"
        if show_source:
            yield d.source

    d = client.get_design(design_id)
    emit(d, as_json, text)


@click.command("lineage")
@click.argument("design_id")
@click.option("--direction", default="both", type=click.Choice(["both", "ancestors", "descendants"]))
@click.option("--depth", default=0, help="Generations to follow (0: all).")
@json_option
@coordinator_command
def lineage_cmd(client, design_id: str, direction: str, depth: int, as_json: bool) -> None:
    """Ancestors and descendants of a design."""
    out = client.lineage(design_id, direction, depth)
    emit(out, as_json, lambda: [*(_line(d) for d in out.designs),
                                *(f"  {e.parent} -> {e.child}" for e in out.edges)])

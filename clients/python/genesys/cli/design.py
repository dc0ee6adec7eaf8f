"""`genesys design submit|list|show|lineage|propose|trace` (the evolution tree on the
coordinator; `propose` runs an LLM designer here and needs the agent extra)."""

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


@click.command("propose")
@click.argument("experiment")
@click.option("--mode", "operation", default="mutation", show_default=True,
              type=click.Choice(["mutation", "crossover", "scratch"]))
@click.option("--parent", "parents", multiple=True,
              help="Parent design id (repeatable; default: the coordinator selects).")
@click.option("--designer", default="", type=click.Choice(["", "llm", "llm-direct", "llm-edit"]),
              help="LLM designer (default: the experiment's, else llm).")
@click.option("--gateway", envvar="GENESYS_LLM_ADDRESS", default=None,
              help="LLM gateway host:port (env GENESYS_LLM_ADDRESS).")
@click.option("--seed", default=0, help="Seed of the designer's choices (0: random).")
@click.option("--scale", default="check", show_default=True, help="Checker scale.")
@json_option
@coordinator_command
def propose_cmd(client, experiment: str, operation: str, parents: tuple[str, ...], designer: str,
                gateway: str | None, seed: int, scale: str, as_json: bool) -> None:
    """Run one LLM design here, streaming each stage, and submit it (exit 1: abandoned)."""
    import json
    import random

    from genesys.designer.llm import design_job
    from genesys.designer.records import parent_entry, sibling_entries, submission

    exp = client.get_experiment(experiment)
    extra = json.loads(exp.config.extra_json or "{}")
    designer = designer or (extra.get("designer") if extra.get("designer", "").startswith("llm")
                            else "llm")
    chosen = ([client.get_design(i) for i in parents] if parents else
              [] if operation == "scratch" else
              [client.get_design(p.id) for p in client.select_parents(experiment, operation)])
    payload = {
        "designer": designer, "operation": operation, "experiment": experiment, "scale": scale,
        "seed": seed or random.getrandbits(31), "gateway": gateway, "caller": "genesys-cli",
        "llm": extra.get("llm") or {}, "parents": [parent_entry(d) for d in chosen],
        "llm_roles": [{"role": b.role, "model": b.model, "temperature": b.temperature,
                       "max_tokens": b.max_tokens} for b in exp.config.llm_roles],
        "siblings": sibling_entries(client.list_designs(experiment, parent=chosen[0].id, limit=4))
        if chosen else [],
        "known_digests": [d.digest for d in client.list_designs(experiment, limit=1000)],
    }

    def show(event: dict) -> None:
        line = f"[{event.get('stage', '')}] {event.get('message', '')}"
        click.echo(line, err=as_json)

    result = design_job(payload, show)
    if result["ok"]:
        request, _ = submission(result, experiment, [d.id for d in chosen], "genesys-cli")
        design = client.submit_design(experiment, tree=request.tree, source=request.source,
                                      name=request.name, parents=request.parents,
                                      trace=request.trace, digest=request.digest)
        result["design_id"] = design.id
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    elif result["ok"]:
        click.echo(f"submitted {result['design_id']} {result['name']} ({result['label']}), "
                   f"{_tokens(result['trace'])}")
    else:
        click.echo(f"abandoned: {result['error']} ({_tokens(result['trace'])})")
    if not result["ok"]:
        raise SystemExit(1)


def _tokens(trace: dict) -> str:
    return (f"{len(trace.get('prompts') or [])} LLM calls, {trace.get('prompt_tokens', 0)} prompt + "
            f"{trace.get('completion_tokens', 0)} completion tokens")


@click.command("trace")
@click.argument("design_or_job_id")
@click.option("--prompts", "show_prompts", is_flag=True, help="Print every prompt and answer.")
@json_option
@coordinator_command
def trace_cmd(client, design_or_job_id: str, show_prompts: bool, as_json: bool) -> None:
    """How a design was made: proposal, review, every LLM call, checker verdict; a failed
    DESIGN job's id shows the trace of the design it abandoned."""
    import json

    from google.protobuf import json_format

    from genesys.client import CoordinatorError
    from genesys.v1 import design_pb2

    try:
        trace = client.get_design(design_or_job_id).trace
    except CoordinatorError as e:
        if e.code.name != "NOT_FOUND":
            raise
        job = client.get_job(design_or_job_id)
        stored = json.loads(job.result_json or "{}").get("trace")
        if not stored:
            raise click.ClickException(f"job {design_or_job_id} kept no design trace "
                                       f"({job.error or 'no error'})") from None
        trace = json_format.ParseDict(stored, design_pb2.DesignTrace(), ignore_unknown_fields=True)

    def text():
        operation = enum_name(design_pb2.DesignOperation, trace.operation, "DESIGN_OPERATION_")
        yield f"designer {trace.designer or '-'}  operation {operation}  agent {trace.agent or '-'}"
        yield (f"{len(trace.prompts)} LLM calls, {trace.prompt_tokens} prompt + "
               f"{trace.completion_tokens} completion tokens, {trace.attempts} attempts")
        if trace.abandoned_reason:
            yield f"ABANDONED: {trace.abandoned_reason}"
        if trace.proposal:
            yield f"proposal: {trace.proposal}"
        if trace.review:
            yield f"review ({trace.review_rating:g}/5): {trace.review}"
        for p in trace.prompts:
            where = f" {p.unit}" if p.unit else ""
            yield (f"  {p.stage}{where} #{p.attempt} {p.role}@{p.model or '-'}: "
                   f"{p.prompt_tokens}+{p.completion_tokens} tokens, {p.latency_seconds:.2f} s")
            if show_prompts:
                yield f"    --- prompt ---\n{p.prompt}\n    --- answer ---\n{p.response}"
        for note in trace.notes:
            yield f"  note: {note}"
        if trace.check_report_json:
            report = json.loads(trace.check_report_json)
            failed = next((c for c in report.get("checks", []) if not c.get("passed")), None)
            yield "check: " + ("valid" if report.get("valid") else
                               f"{failed['name']}: {failed['message']}" if failed else "invalid")

    emit(trace, as_json, text)

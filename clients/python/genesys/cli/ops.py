"""`genesys workers`, `jobs`, `budget show|set`, `token create|revoke`, `watch`."""

from __future__ import annotations

import json

import click

from .coordinator_opts import coordinator_command, emit, enum_name, json_option, to_dict


@click.command("workers")
@click.option("--all", "include_dead", is_flag=True, help="Include dead and gone workers.")
@json_option
@coordinator_command
def workers_cmd(client, include_dead: bool, as_json: bool) -> None:
    """Registered workers, their state, roles and leases."""
    from genesys.v1 import job_pb2

    workers = client.list_workers(include_dead)
    emit(workers, as_json, lambda: [
        f"{w.id:<14} {w.name[:24]:<24} {enum_name(job_pb2.WorkerState, w.state, 'WORKER_STATE_'):<8} "
        f"roles={','.join(enum_name(job_pb2.WorkerRole, r, 'WORKER_ROLE_') for r in w.capabilities.roles)} "
        f"jobs={','.join(w.job_ids) or '-'}" for w in workers])


@click.command("jobs")
@click.option("--experiment", default="")
@click.option("--state", default="", type=click.Choice(["", "queued", "leased", "succeeded",
                                                          "failed", "cancelled"]))
@click.option("--kind", default="", type=click.Choice(["", "design", "verify"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--cancel", "cancel_id", default="", help="Cancel this job id instead of listing.")
@json_option
@coordinator_command
def jobs_cmd(client, experiment: str, state: str, kind: str, limit: int, cancel_id: str,
             as_json: bool) -> None:
    """Jobs, most recent first (or cancel one with --cancel ID)."""
    from genesys.v1 import job_pb2

    if cancel_id:
        job = client.cancel_job(cancel_id, "cancelled from the CLI")
        emit(job, as_json, lambda: [f"cancelled {job.id}"])
        return
    jobs = client.list_jobs(experiment, state, kind, limit=limit)
    emit(jobs, as_json, lambda: [
        f"{j.id:<14} {j.experiment[:16]:<16} {enum_name(job_pb2.JobKind, j.kind, 'JOB_KIND_'):<6} "
        f"{enum_name(job_pb2.JobState, j.state, 'JOB_STATE_'):<9} attempt={j.attempt}/{j.max_attempts} "
        f"worker={j.worker_id or '-'} design={j.design_id or '-'} rung={j.rung or '-'}"
        + (f" error={j.error[:60]!r}" if j.error else "") for j in jobs])


def _ledger_lines(ledger):
    yield f"{'rung':<8} {'total':>6} {'released':>9} {'reserved':>9} {'committed':>10} {'available':>10}"
    for r in ledger.rungs:
        yield (f"{r.rung:<8} {r.total:>6} {r.released:>9} {r.reserved:>9} {r.committed:>10} "
               f"{r.available:>10}")


@click.command("show")
@click.argument("experiment")
@click.option("--entries", default=0, help="Also print this many recent ledger entries.")
@json_option
@coordinator_command
def budget_show_cmd(client, experiment: str, entries: int, as_json: bool) -> None:
    """The ladder budget of an experiment: total, released, reserved, committed per rung."""
    from genesys.v1 import budget_pb2

    out = client.get_budget(experiment, entries)
    emit(out, as_json, lambda: [*_ledger_lines(out.ledger), *(
        f"  {enum_name(budget_pb2.LedgerOp, e.op, 'LEDGER_OP_'):<8} {e.rung:<8} {e.amount:>4} "
        f"{e.job_id or '-'}" for e in out.entries)])


@click.command("set")
@click.argument("experiment")
@click.argument("rung")
@click.argument("total", type=click.IntRange(min=0))
@json_option
@coordinator_command
def budget_set_cmd(client, experiment: str, rung: str, total: int, as_json: bool) -> None:
    """Set a rung's total budget (admin)."""
    ledger = client.set_budget(experiment, rung, total)
    emit(ledger, as_json, lambda: _ledger_lines(ledger))


@click.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "submitter", "worker"]))
@click.option("--ttl", "ttl_seconds", default=0, type=click.IntRange(min=0),
              help="Seconds until it expires (0: never).")
@json_option
@coordinator_command
def token_create_cmd(client, name: str, role: str, ttl_seconds: int, as_json: bool) -> None:
    """Create a bearer token (admin). The secret is printed once."""
    out = client.create_token(name, role, ttl_seconds)
    emit(out, as_json, lambda: [out.token])


@click.command("revoke")
@click.argument("id_or_name")
@json_option
@coordinator_command
def token_revoke_cmd(client, id_or_name: str, as_json: bool) -> None:
    """Revoke a token by id or name (admin)."""
    info = client.revoke_token(id_or_name)
    emit(info, as_json, lambda: [f"revoked {info.id} ({info.name})"])


@click.command("watch")
@click.argument("experiment", required=False, default="")
@click.option("--kind", "kinds", multiple=True, help="Event kind, e.g. design_submitted (repeatable).")
@click.option("--after", "after_seq", default=None, type=click.IntRange(min=0),
              help="First replay stored events after this sequence number (0: all).")
@click.option("--timeout", default=None, type=float, help="Stop after this many seconds.")
@json_option
@coordinator_command
def watch_cmd(client, experiment: str, kinds: tuple[str, ...], after_seq: int | None,
              timeout: float | None, as_json: bool) -> None:
    """Stream experiment events (designs, jobs, budget) until interrupted."""
    from genesys.v1 import design_pb2

    for event in client.watch(experiment, kinds, after_seq, timeout):
        if as_json:
            click.echo(json.dumps(to_dict(event)))
        else:
            kind = enum_name(design_pb2.EventKind, event.kind, "EVENT_KIND_")
            ids = " ".join(f"{k}={v}" for k, v in (("design", event.design_id),
                                                  ("job", event.job_id),
                                                  ("worker", event.worker_id)) if v)
            click.echo(f"{event.seq:>6} {event.time.ToDatetime():%H:%M:%S} {event.experiment or '-'} "
                       f"{kind} {ids} {event.message}")

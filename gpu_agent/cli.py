"""`genesys agent start`: run a GPU agent (worker daemon) against a coordinator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from .agent import ROLES, Agent, AgentConfig
from .devices import host_memory_bytes, select_devices
from .link import AgentFatal
from .log import log


def default_data_dir() -> str:
    """The verification engine's default prepared-data folder, asked of a child process
    (computing it imports genesys.lmade, which imports torch)."""
    code = "from genesys.lmade.data import default_data_dir; print(default_data_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _token(token: str | None, token_file: str | None) -> str:
    if token:
        return token
    if token_file:
        return Path(token_file).expanduser().read_text().strip()
    raise click.UsageError("a token is required: --token, --token-file or GENESYS_TOKEN")


def _roles(spec: str) -> tuple[str, ...]:
    roles = tuple(r.strip() for r in spec.split(",") if r.strip())
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise click.BadParameter(f"unknown role(s) {unknown} (known: {', '.join(ROLES)})",
                                 param_hint="--roles")
    return roles


@click.command("start")
@click.option("--coordinator", envvar="GENESYS_COORDINATOR", default="127.0.0.1:50051",
              show_default=True, help="HOST:PORT of the coordinator (env GENESYS_COORDINATOR).")
@click.option("--token", envvar="GENESYS_TOKEN", help="Worker (or admin) bearer token (env GENESYS_TOKEN).")
@click.option("--token-file", type=click.Path(dir_okay=False), help="Read the token from this file.")
@click.option("--roles", default="verify,design", show_default=True, help="verify, design or both.")
@click.option("--gpus", default="all", show_default=True, help="all | none | indices like 0,1.")
@click.option("--work-dir", type=click.Path(file_okay=False), default=".genesys/agent",
              show_default=True, help="Checkpoints, the result outbox and the worker id live here.")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="GENESYS_DATA_DIR",
              help="Prepared data (`genesys data prepare`); default: the engine's default.")
@click.option("--max-jobs", type=click.IntRange(min=0), default=0, help="Concurrent jobs (0: one per device).")
@click.option("--experiment", default="", help="Only lease jobs of this experiment.")
@click.option("--name", default="", help="Worker name shown by the coordinator (default: host name).")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads per job (default: CPUs / jobs).")
@click.option("--job-memory-mb", type=click.IntRange(min=256), help="Memory limit of one job's child.")
@click.option("--connect-timeout", type=float, default=30.0, show_default=True,
              help="Give up (exit 1) when the coordinator stays unreachable this long.")
@click.option("--retry-forever", is_flag=True, help="Never give up on an unreachable coordinator or refused token.")
@click.option("--tls-ca", type=click.Path(dir_okay=False), help="CA bundle: connect with TLS.")
@click.option("--drain-grace", type=float, default=60.0, show_default=True,
              help="Seconds a running job gets to checkpoint on SIGTERM.")
@click.option("--accept-weak-isolation", is_flag=True,
              help="Run jobs even where this host cannot jail design code "
                   "(see `genesys check --isolation`).")
@click.option("--dry-run", "dry_run_s", type=float, default=None, hidden=True,
              help="Simulate VERIFY jobs for this many seconds each instead of training.")
def start_cmd(coordinator: str, token: str | None, token_file: str | None, roles: str, gpus: str,
              work_dir: str, data_dir: str | None, max_jobs: int, experiment: str, name: str,
              threads: int | None, job_memory_mb: int | None, connect_timeout: float,
              retry_forever: bool, tls_ca: str | None, drain_grace: float,
              accept_weak_isolation: bool, dry_run_s: float | None) -> None:
    """Start a GPU agent: register, lease DESIGN/VERIFY jobs that fit, run each in a
    sandboxed child, report results. SIGTERM drains (checkpoint, hand leases back, exit)."""
    try:
        devices = select_devices(gpus)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--gpus") from None
    slots = min(max_jobs or len(devices), len(devices))
    config = AgentConfig(
        coordinator=coordinator, token=_token(token, token_file), roles=_roles(roles),
        devices=devices, work_dir=Path(work_dir).expanduser().resolve(),
        data_dir=str(Path(data_dir).expanduser().resolve()) if data_dir else default_data_dir(),
        max_jobs=max_jobs, name=name, experiment=experiment, connect_timeout_s=connect_timeout,
        retry_forever=retry_forever, threads=threads or max(1, (os.cpu_count() or 1) // slots),
        memory_mb=job_memory_mb or min(16384, (host_memory_bytes() >> 20) // slots),
        tls_ca=tls_ca, drain_grace_s=drain_grace, dry_run_s=dry_run_s,
        accept_weak_isolation=accept_weak_isolation)
    try:
        code = Agent(config).run()
    except AgentFatal as exc:
        log("fatal", level="error", error=str(exc))
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)

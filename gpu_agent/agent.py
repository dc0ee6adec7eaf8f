"""The worker daemon: register, heartbeat (renewing leases), long-poll for jobs that fit,
run one job per GPU (one on the CPU), deliver results through the on-disk outbox, drain on
SIGTERM.

Threads: the main thread leases; ``heartbeat`` renews leases and learns about cancelled or
lost jobs; ``outbox`` delivers reports with backoff until the coordinator has them; one
thread per running job waits on its sandboxed child.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from genesys import __version__
from genesys.v1 import evolution_pb2, job_pb2, scheduler_pb2
from google.protobuf import json_format

from .devices import DeviceInfo, host_memory_bytes
from .job import FAILURE_KINDS, JobRun, JobSettings
from .link import AUTH, AgentFatal, Link, code_of, explain, is_transient
from .log import log
from .outbox import Outbox, Report
from .sandboxing import sandbox

ROLES = {"verify": job_pb2.WORKER_ROLE_VERIFY, "design": job_pb2.WORKER_ROLE_DESIGN}
KINDS = {"verify": job_pb2.JOB_KIND_VERIFY, "design": job_pb2.JOB_KIND_DESIGN}
# Coordinator answers that settle a report for good (besides success): the lease is stale
# or the job is gone, so resending can never succeed.
FINAL_REFUSALS = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
                            grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS})


@dataclass
class AgentConfig:
    coordinator: str
    token: str
    roles: tuple[str, ...] = ("verify", "design")
    devices: list[DeviceInfo] = field(default_factory=list)
    work_dir: Path = Path(".genesys/agent")
    data_dir: str = ""
    max_jobs: int = 0  # 0: one per device
    name: str = ""
    experiment: str = ""  # lease only this experiment's jobs (empty: any)
    connect_timeout_s: float = 30.0
    retry_forever: bool = False  # keep retrying a refused token / unreachable address
    threads: int | None = None
    memory_mb: int | None = None
    verify_wall_s: float = 6 * 3600.0
    design_wall_s: float = 1800.0
    drain_grace_s: float = 60.0
    lease_wait_s: float = 5.0
    tls_ca: str | None = None
    isolate: bool = True
    accept_weak_isolation: bool = False  # run jobs on a host without the sandbox's jail
    dry_run_s: float | None = None
    labels: dict[str, str] = field(default_factory=dict)


class Agent:
    def __init__(self, config: AgentConfig):
        self.cfg = config
        self.cfg.work_dir.mkdir(parents=True, exist_ok=True)
        self.stop = threading.Event()  # set at the very end: retries give up
        self.draining = threading.Event()
        self.link = Link(config.coordinator, config.token, config.tls_ca, stop=self.stop)
        self.outbox = Outbox(config.work_dir / "outbox")
        self.worker_id = self._load_worker_id()
        self.heartbeat_s = 5.0
        self.runs: dict[str, JobRun] = {}
        self.free: list[DeviceInfo] = list(config.devices)
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self.slots = min(config.max_jobs or len(config.devices), len(config.devices)) or 1

    # --- identity -----------------------------------------------------------------------------

    @property
    def _id_file(self) -> Path:
        return self.cfg.work_dir / "worker.json"

    def _load_worker_id(self) -> str:
        try:
            return json.loads(self._id_file.read_text()).get("worker_id", "")
        except (OSError, ValueError):
            return ""

    def _capabilities(self) -> job_pb2.WorkerCapabilities:
        return job_pb2.WorkerCapabilities(
            roles=[ROLES[r] for r in self.cfg.roles], devices=[d.to_proto() for d in self.cfg.devices],
            memory_bytes=host_memory_bytes(), cpu_count=os.cpu_count() or 1,
            experiments=[self.cfg.experiment] if self.cfg.experiment else [],
            labels=self.cfg.labels)

    def register(self) -> None:
        """Register (or re-register under the saved id). A refused token or an unreachable
        coordinator raises AgentFatal after the connect timeout unless retry_forever."""
        request = scheduler_pb2.RegisterWorkerRequest(
            name=self.cfg.name or socket.gethostname(), capabilities=self._capabilities(),
            version=__version__, worker_id=self.worker_id)
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        while True:
            try:
                response = self.link.call(
                    self.link.scheduler.RegisterWorker, request, timeout=10.0,
                    retry_for=None if self.cfg.retry_forever else self.cfg.connect_timeout_s,
                    on_retry=lambda e: log("coordinator_unreachable", level="warning",
                                           address=self.cfg.coordinator, error=code_of(e)))
                break
            except grpc.RpcError as err:
                if code_of(err) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED) \
                        and request.worker_id:
                    # the coordinator forgot the saved id, or it belongs to another token
                    log("worker_id_dropped", level="warning", worker=request.worker_id,
                        reason=err.details())
                    request.worker_id = ""
                    continue
                if self.cfg.retry_forever and code_of(err) in AUTH and not self.stop.is_set():
                    log("token_refused", level="error", reason=explain(err, self.cfg.coordinator))
                    self.stop.wait(10.0)
                    continue
                if self.stop.is_set() or code_of(err) in AUTH or time.monotonic() >= deadline \
                        or not is_transient(err):
                    raise AgentFatal(explain(err, self.cfg.coordinator)) from None
        self.worker_id = response.worker.id
        self.heartbeat_s = max(0.5, float(response.heartbeat_seconds or 5) * 0.6)
        self._id_file.write_text(json.dumps({"worker_id": self.worker_id}))
        log("registered", worker=self.worker_id, coordinator=self.cfg.coordinator,
            roles=",".join(self.cfg.roles), devices=",".join(d.name for d in self.cfg.devices),
            slots=self.slots, lease_s=response.lease_seconds)

    # --- main loop ----------------------------------------------------------------------------

    def check_isolation(self) -> None:
        """Log which sandbox layers this host enforces; refuse a host without the jail
        unless the user accepted that (--accept-weak-isolation)."""
        iso = sandbox.isolation() if self.cfg.isolate else sandbox.NO_ISOLATION
        log("isolation", level="info" if iso.jail else "warning",
            enforced="; ".join(iso.enforced), missing="; ".join(iso.missing) or None)
        if not iso.jail and not self.cfg.accept_weak_isolation:
            raise AgentFatal("this host cannot jail design code (missing: "
                             f"{'; '.join(iso.missing)}); `genesys check --isolation` says "
                             "what each layer needs; pass --accept-weak-isolation to run "
                             "jobs anyway")

    def run(self) -> int:
        self._install_signals()
        self.check_isolation()
        self.register()
        threads = [threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True),
                   threading.Thread(target=self._outbox_loop, name="outbox", daemon=True)]
        for t in threads:
            t.start()
        try:
            self._lease_loop()
        finally:
            self._shutdown()
        return 0

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self.begin_drain(signal.Signals(signum).name))

    def begin_drain(self, why: str = "") -> None:
        if not self.draining.is_set():
            log("draining", worker=self.worker_id, reason=why, running=len(self.runs))
            self.draining.set()
            with self._lock:
                self._slot_freed.notify_all()

    def _kinds(self) -> list[int]:
        return [KINDS[r] for r in self.cfg.roles]

    def _lease_loop(self) -> None:
        backoff = 1.0
        while not self.draining.is_set():
            with self._lock:
                while (not self.free or len(self.runs) >= self.slots) \
                        and not self.draining.is_set():
                    self._slot_freed.wait(1.0)
            if self.draining.is_set():
                return
            request = scheduler_pb2.LeaseJobRequest(
                worker_id=self.worker_id, kinds=self._kinds(), experiment=self.cfg.experiment,
                wait_seconds=self.cfg.lease_wait_s)
            try:
                response = self.link.call(self.link.scheduler.LeaseJob, request,
                                          timeout=self.cfg.lease_wait_s + 15.0)
            except grpc.RpcError as err:
                if self.stop.is_set() or self.draining.is_set():
                    return
                if code_of(err) in AUTH:
                    raise AgentFatal(explain(err, self.cfg.coordinator)) from None
                if code_of(err) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                    self.register()
                    continue
                log("lease_error", level="warning", error=explain(err, self.cfg.coordinator),
                    retry_in_s=round(backoff, 1))
                self.draining.wait(backoff)  # a drain is never held up by an outage
                backoff = min(10.0, backoff * 2)
                continue
            backoff = 1.0
            if response.HasField("job") and response.job.id:
                self._start(response.job, response.lease)

    def _start(self, job: job_pb2.Job, lease: job_pb2.Lease) -> None:
        payload = json.loads(job.payload_json or "{}")
        gpus_total = sum(d.kind == "cuda" for d in self.cfg.devices)
        wanted = max(1, int(payload.get("gpus", 1))) if gpus_total else 1
        if self.draining.is_set() or wanted > max(gpus_total, 1):
            reason = "agent draining" if self.draining.is_set() else \
                f"needs {wanted} GPUs, this agent has {gpus_total}"
            self.outbox.put(Report(job.id, lease.fencing_token, "release", error=reason))
            return
        with self._lock:
            while len(self.free) < wanted:
                self._slot_freed.wait(1.0)  # a multi-GPU job waits for its GPUs (lease renewed)
            devices = self.free[:wanted]
            del self.free[:wanted]
            settings = JobSettings(
                work_dir=self.cfg.work_dir, data_dir=self.cfg.data_dir, worker_id=self.worker_id,
                threads=self.cfg.threads, memory_mb=self.cfg.memory_mb,
                verify_wall_s=self.cfg.verify_wall_s, design_wall_s=self.cfg.design_wall_s,
                isolate=self.cfg.isolate, dry_run_s=self.cfg.dry_run_s)
            run = JobRun(self.link, settings, job, lease, devices, self._finished)
            self.runs[job.id] = run
        log("job_leased", worker=self.worker_id, job=job.id, design=job.design_id or None,
            kind=run.kind, rung=job.rung or None, attempt=job.attempt, fencing=lease.fencing_token)
        run.start()

    def _finished(self, run: JobRun, report: Report | None) -> None:
        if report is not None:
            self.outbox.put(report)
        log("job_finished", job=run.job.id, design=run.design_id or None, kind=run.kind,
            outcome=report.action if report else f"dropped ({run.stop_reason})",
            error=(report.error.splitlines() or [""])[0][:300] if report and report.error else None)
        if report is None or report.action != "release":
            run.cleanup(report)
        with self._lock:
            self.runs.pop(run.job.id, None)
            self.free.extend(run.devices)
            self._slot_freed.notify_all()

    # --- heartbeat ----------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self.stop.wait(self.heartbeat_s):
            with self._lock:
                runs = dict(self.runs)
            request = scheduler_pb2.HeartbeatRequest(
                worker_id=self.worker_id, leases=[r.ref() for r in runs.values()],
                draining=self.draining.is_set())
            try:
                response = self.link.call(self.link.scheduler.Heartbeat, request, timeout=5.0)
            except grpc.RpcError as err:
                if code_of(err) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                    self._reregister()
                elif not self.stop.is_set():
                    log("heartbeat_failed", level="warning", worker=self.worker_id,
                        error=explain(err, self.cfg.coordinator))
                continue
            for job_id in response.cancelled_job_ids:
                if job_id in runs:
                    runs[job_id].stop("cancelled")
            for job_id in response.lost_job_ids:
                if job_id in runs:
                    runs[job_id].stop("lost")
            if response.state in (job_pb2.WORKER_STATE_DEAD, job_pb2.WORKER_STATE_GONE):
                self._reregister()

    def _reregister(self) -> None:
        try:
            self.register()
        except AgentFatal as exc:
            log("reregister_failed", level="error", error=str(exc))

    # --- outbox -------------------------------------------------------------------------------

    def _outbox_loop(self) -> None:
        while not self.stop.is_set():
            self.outbox.changed.clear()
            pending = self.outbox.pending()
            if not pending:
                self.outbox.changed.wait(1.0)
                continue
            for report in pending:
                if not self._deliver(report):
                    break

    def _deliver(self, report: Report) -> bool:
        """Send one report (retrying transient failures with backoff). True when settled."""
        try:
            self._send(report)
        except grpc.RpcError as err:
            if code_of(err) in FINAL_REFUSALS:
                log("report_refused", level="warning", job=report.job_id, design=report.design_id,
                    action=report.action, code=code_of(err).name, detail=err.details())
            else:
                log("report_failed", level="warning", job=report.job_id, action=report.action,
                    error=explain(err, self.cfg.coordinator))
                return False
        self.outbox.done(report)
        return True

    def _retry_log(self, report: Report):
        def on_retry(err: BaseException) -> None:
            log("report_retry", level="warning", job=report.job_id, action=report.action,
                error=code_of(err))
        return on_retry

    def _call(self, method, request, report: Report):
        return self.link.call(method, request, timeout=15.0, retry_for=None,
                              on_retry=self._retry_log(report))

    def _send(self, report: Report) -> None:
        s = self.link.scheduler
        common = {"job_id": report.job_id, "fencing_token": report.fencing_token,
                  "worker_id": self.worker_id}
        if report.action == "release":
            self._call(s.ReleaseJob, scheduler_pb2.ReleaseJobRequest(**common, reason=report.error), report)
            log("job_released", job=report.job_id, design=report.design_id, reason=report.error)
            return
        if report.action == "fail":
            self._call(s.FailJob, scheduler_pb2.FailJobRequest(
                **common, error=report.error[:4000], retryable=report.retryable,
                kind=FAILURE_KINDS.get(report.failure_kind, 0),
                result_json=json.dumps(report.result) if report.result else ""), report)
            log("job_failed_reported", job=report.job_id, design=report.design_id,
                retryable=report.retryable, failure_kind=report.failure_kind or None)
            return
        result = json_format.ParseDict(report.result, job_pb2.JobResult())
        if report.submission and not report.design_id:
            report.design_id = self._submit_design(report)
            self.outbox.put(report)  # never submit twice, even if completion must wait
        if report.kind == "DESIGN":
            result.design_id = report.design_id
        response = self._call(s.CompleteJob, scheduler_pb2.CompleteJobRequest(**common, result=result), report)
        log("job_completed", job=report.job_id, design=report.design_id or None, kind=report.kind,
            already=response.already_completed or None,
            metrics=json.dumps(dict(result.metrics)) if result.metrics else None)

    def _submit_design(self, report: Report) -> str:
        request = json_format.ParseDict(report.submission, evolution_pb2.SubmitDesignRequest())
        try:
            response = self._call(self.link.evolution.SubmitDesign, request, report)
        except grpc.RpcError as err:
            if code_of(err) == grpc.StatusCode.ALREADY_EXISTS:
                # A duplicate design: hand the job back as a retryable failure.
                self._call(self.link.scheduler.FailJob, scheduler_pb2.FailJobRequest(
                    job_id=report.job_id, fencing_token=report.fencing_token,
                    worker_id=self.worker_id, error=f"duplicate design: {err.details()}",
                    retryable=True), report)
            raise
        log("design_submitted", job=report.job_id, design=response.design.id,
            name=response.design.name)
        return response.design.id

    # --- shutdown -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.draining.set()
        with self._lock:
            runs = list(self.runs.values())
        for run in runs:
            run.stop("drain")
        deadline = time.monotonic() + self.cfg.drain_grace_s
        for run in runs:
            run.thread.join(max(0.0, deadline - time.monotonic()))
            if run.thread.is_alive():
                run.cancel.set()  # no checkpoint in time: kill it; the job resumes elsewhere
                run.thread.join(10.0)
        # Hand everything back: wait (bounded) for the outbox to empty.
        deadline = time.monotonic() + 30.0
        while len(self.outbox) and time.monotonic() < deadline:
            time.sleep(0.2)
        if len(self.outbox):
            log("outbox_pending", level="warning", reports=len(self.outbox),
                note="kept on disk; delivered at the next start")
        self.stop.set()
        try:
            self.link.call(self.link.scheduler.DeregisterWorker,
                           scheduler_pb2.DeregisterWorkerRequest(worker_id=self.worker_id),
                           timeout=3.0)
        except grpc.RpcError:
            pass
        log("stopped", worker=self.worker_id)
        self.link.close()

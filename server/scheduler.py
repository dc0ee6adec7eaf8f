"""Workers, leases and jobs. Workers pull: LeaseJob picks a queued job, or creates a VERIFY
job (selection + budget ledger) or a DESIGN job (design-job mix) at lease time.

Every lease increments the job's fencing token; calls under an older token are refused
(FAILED_PRECONDITION), so a job completes exactly once. Expired leases go back to the
queue, or fail after `max_attempts`; a VERIFY job's reserved budget is refunded.
Job payload and result formats: server/README.md.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator

from genesys.v1 import design_pb2, experiment_pb2, job_pb2, scheduler_pb2
from google.protobuf import json_format

from . import ledger, results, selection
from .auth import ADMIN
from .config import ServerConfig
from .errors import (
    FailedPrecondition,
    InvalidArgument,
    JobProducedDesign,
    NotFound,
    PermissionDenied,
    brief,
)
from .events import EventHub, WorkSignal
from .evolution import Evolution, check_metrics, now_ts
from .store import (
    REPORT_PREFIX,
    Hold,
    JobQuery,
    Store,
    TokenRecord,
    deadline_of,
    design_rungs,
)

log = logging.getLogger("genesys.server")
J, EV = job_pb2, design_pb2
ROLE_KINDS = {J.WORKER_ROLE_DESIGN: J.JOB_KIND_DESIGN, J.WORKER_ROLE_VERIFY: J.JOB_KIND_VERIFY}
KIND_NAME = {J.JOB_KIND_DESIGN: "design", J.JOB_KIND_VERIFY: "verify"}
ACTIVE = experiment_pb2.EXPERIMENT_STATE_ACTIVE
QUEUE_PEEK = 8  # queued jobs tried per (experiment, kind, rung) before moving on
LIVE_STATES = (J.WORKER_STATE_ALIVE, J.WORKER_STATE_DRAINING)  # these may still become DEAD


def copy_job(job: job_pb2.Job) -> job_pb2.Job:
    out = job_pb2.Job()
    out.CopyFrom(job)
    return out


def fits(worker: job_pb2.Worker, rung: experiment_pb2.Rung) -> bool:
    """Whether a worker may verify at a rung: allowed rungs and enough device memory."""
    caps = worker.capabilities
    if caps.rungs and rung.name not in caps.rungs:
        return False
    memory = max((d.memory_bytes for d in caps.devices if d.kind != "cpu"), default=0)
    return (memory or caps.memory_bytes) >= rung.min_memory_bytes


def _json_object(text: str) -> dict:
    """`text` parsed as a JSON object; {} for anything else (validated as JSON already)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Scheduler:
    def __init__(self, store: Store, hub: EventHub, work: WorkSignal, evolution: Evolution,
                 config: ServerConfig):
        self.store, self.hub, self.work, self.evo = store, hub, work, evolution
        self.cfg = config.scheduler
        self._lock = threading.RLock()
        self._turn = 0
        self._workers = {w.id: w for w in store.list_workers()}
        now = time.time()
        # After a restart every known worker gets a fresh grace period.
        self._seen = {w: now for w in self._workers}

    # -- workers ----------------------------------------------------------------------
    def register(self, req: scheduler_pb2.RegisterWorkerRequest, caller: TokenRecord
                 ) -> job_pb2.Worker:
        if len(req.name) > 200:
            raise InvalidArgument("name", "longer than 200 characters")
        if not req.capabilities.roles:
            raise InvalidArgument("capabilities.roles", "a worker needs at least one role")
        if any(r not in ROLE_KINDS for r in req.capabilities.roles):
            raise InvalidArgument("capabilities.roles", "roles are DESIGN and/or VERIFY")
        worker_id = req.worker_id or "w" + secrets.token_hex(6)
        with self._lock:
            old = self._workers.get(worker_id)
            if old is not None and old.owner != caller.id and caller.role != ADMIN:
                raise PermissionDenied(f"worker {worker_id} belongs to another token")
            worker = job_pb2.Worker(id=worker_id, name=req.name or worker_id,
                                    capabilities=req.capabilities, state=J.WORKER_STATE_ALIVE,
                                    version=req.version, owner=caller.id)
            if old is not None:
                worker.registered_at.CopyFrom(old.registered_at)
            else:
                now_ts(worker, "registered_at")
            self.store.put_worker(worker)
            self._workers[worker_id] = worker
            self._seen[worker_id] = time.time()
        self.hub.publish(EV.EVENT_KIND_WORKER_REGISTERED, "", worker_id=worker_id,
                         message=f"name={worker.name}")
        self.work.notify()
        return worker

    def worker(self, worker_id: str, caller: TokenRecord) -> job_pb2.Worker:
        with self._lock:
            worker = self._workers.get(worker_id)
        if worker is None:
            raise NotFound(f"no worker {worker_id!r} (register first)")
        if worker.owner != caller.id and caller.role != ADMIN:
            raise PermissionDenied(f"worker {worker_id} belongs to another token")
        if worker.state == J.WORKER_STATE_GONE:
            raise FailedPrecondition(f"worker {worker_id} deregistered; register again")
        return worker

    def _set_state(self, worker: job_pb2.Worker, state: int) -> None:
        with self._lock:
            if worker.state == state:
                return
            worker.state = state
            self.store.put_worker(worker)

    def _touch(self, worker: job_pb2.Worker) -> None:
        with self._lock:
            self._seen[worker.id] = time.time()
            if worker.state == J.WORKER_STATE_DEAD:
                self._set_state(worker, J.WORKER_STATE_ALIVE)

    def heartbeat(self, req: scheduler_pb2.HeartbeatRequest, caller: TokenRecord
                  ) -> scheduler_pb2.HeartbeatResponse:
        worker = self.worker(req.worker_id, caller)
        self._touch(worker)
        if req.draining:
            self._set_state(worker, J.WORKER_STATE_DRAINING)
        out = scheduler_pb2.HeartbeatResponse()
        for ref in req.leases:
            try:
                lease, cancelled = self.renew(ref.job_id, ref.fencing_token, req.worker_id, caller)
            except (FailedPrecondition, NotFound, PermissionDenied):
                out.lost_job_ids.append(ref.job_id)
                continue
            if cancelled:
                out.cancelled_job_ids.append(ref.job_id)
            else:
                out.leases.append(lease)
        out.state = worker.state
        return out

    def deregister(self, worker_id: str, caller: TokenRecord) -> job_pb2.Worker:
        worker = self.worker(worker_id, caller)
        for job in self.store.list_jobs(JobQuery(worker_id=worker_id, state=J.JOB_STATE_LEASED,
                                                 limit=1000)):
            self._requeue(job, "worker deregistered", count_attempt=False)
        self._set_state(worker, J.WORKER_STATE_GONE)
        return worker

    def list_workers(self, include_dead: bool, limit: int = 100) -> list[job_pb2.Worker]:
        held: dict[str, list[str]] = {}
        for job in self.store.list_jobs(JobQuery(state=J.JOB_STATE_LEASED, limit=100_000)):
            held.setdefault(job.worker_id, []).append(job.id)
        out = []
        with self._lock:
            for worker in self._workers.values():
                if not include_dead and worker.state in (J.WORKER_STATE_DEAD, J.WORKER_STATE_GONE):
                    continue
                if len(out) >= limit:
                    break
                view = job_pb2.Worker()
                view.CopyFrom(worker)
                view.job_ids.extend(held.get(worker.id, []))
                now_ts(view, "last_heartbeat", self._seen.get(worker.id, 0.0))
                out.append(view)
        return out

    # -- leasing ----------------------------------------------------------------------
    def try_lease(self, req: scheduler_pb2.LeaseJobRequest, caller: TokenRecord
                  ) -> tuple[job_pb2.Job, job_pb2.Lease] | None:
        worker = self.worker(req.worker_id, caller)
        self._touch(worker)
        if worker.state == J.WORKER_STATE_DRAINING:
            return None
        kinds = [ROLE_KINDS[r] for r in worker.capabilities.roles]
        if req.kinds:
            wrong = [k for k in req.kinds if k not in kinds]
            if wrong:
                raise InvalidArgument("kinds", f"worker roles do not allow {J.JobKind.Name(wrong[0])}")
            kinds = list(req.kinds)
        allowed = list(worker.capabilities.experiments)
        if req.experiment:
            if allowed and req.experiment not in allowed:
                raise InvalidArgument("experiment", "not among the worker's experiments")
            allowed = [req.experiment]
        exps = [e for e in self.evo.experiments()
                if e.state == ACTIVE and (not allowed or e.name in allowed)]
        with self._lock:  # start at another experiment each time: none waits behind another
            self._turn = (self._turn + 1) % max(1, len(exps))
        exps = exps[self._turn:] + exps[: self._turn]
        for exp in exps:  # per experiment: queued jobs first, then new ones
            for job in self._takeable_jobs(exp, worker, kinds):
                leased = self._lease_queued(job, worker)
                if leased:
                    return leased
            if J.JOB_KIND_VERIFY in kinds:
                leased = self._new_verify(exp, worker)
                if leased:
                    return leased
            if J.JOB_KIND_DESIGN in kinds:
                leased = self._new_design(exp, worker)
                if leased:
                    return leased
        return None

    def _takeable_jobs(self, exp: experiment_pb2.Experiment, worker: job_pb2.Worker,
                       kinds: list[int]) -> Iterator[job_pb2.Job]:
        """Queued jobs of an active experiment this worker can take: DESIGN jobs, and VERIFY
        jobs only at rungs that fit the worker and have budget (so jobs nobody can take
        now never hide the ones it can)."""
        if J.JOB_KIND_DESIGN in kinds:
            yield from self.store.queued_jobs(exp.name, J.JOB_KIND_DESIGN, "", QUEUE_PEEK)
        if J.JOB_KIND_VERIFY in kinds:
            limits = ledger.open_rungs(self.store, exp)
            for rung in exp.config.ladder.rungs:
                if rung.name in limits and fits(worker, rung):
                    yield from self.store.queued_jobs(exp.name, J.JOB_KIND_VERIFY, rung.name,
                                                      QUEUE_PEEK)

    def _lease_seconds(self, exp: experiment_pb2.Experiment, job: job_pb2.Job) -> int:
        rung = next((r for r in exp.config.ladder.rungs if r.name == job.rung), None)
        return (rung.lease_seconds if rung and rung.lease_seconds else 0) or exp.config.jobs.lease_seconds

    def _leased(self, job: job_pb2.Job, worker: job_pb2.Worker, exp: experiment_pb2.Experiment
                ) -> job_pb2.Job:
        """A copy of `job` under a new lease for `worker`."""
        new = copy_job(job)
        new.state, new.worker_id, new.error = J.JOB_STATE_LEASED, worker.id, ""
        new.attempt += 1
        new.fencing_token += 1
        new.max_attempts = new.max_attempts or exp.config.jobs.max_attempts
        now_ts(new, "lease_deadline", time.time() + self._lease_seconds(exp, new))
        now_ts(new, "updated_at")
        return new

    def _granted(self, job: job_pb2.Job, exp: experiment_pb2.Experiment
                 ) -> tuple[job_pb2.Job, job_pb2.Lease]:
        lease = job_pb2.Lease(job_id=job.id, fencing_token=job.fencing_token,
                              deadline=job.lease_deadline, worker_id=job.worker_id,
                              lease_seconds=self._lease_seconds(exp, job))
        self.hub.publish(EV.EVENT_KIND_JOB_LEASED, job.experiment, job_id=job.id,
                         worker_id=job.worker_id, design_id=job.design_id,
                         message=f"kind={KIND_NAME[job.kind]} attempt={job.attempt}")
        return job, lease

    def _lease_queued(self, job: job_pb2.Job, worker: job_pb2.Worker):
        exp = self.evo.experiment(job.experiment)
        if exp.state != ACTIVE:
            return None
        new = self._leased(job, worker, exp)
        reserve = None
        if job.kind == J.JOB_KIND_VERIFY:
            rung = next((r for r in exp.config.ladder.rungs if r.name == job.rung), None)
            limits = ledger.open_rungs(self.store, exp)
            if rung is None or not fits(worker, rung) or job.rung not in limits:
                return None
            reserve = (exp.name, job.rung, limits[job.rung])
        else:
            new.payload_json = self._design_payload(exp, json.loads(job.payload_json or "{}"))
        if not self.store.claim_job(new, job, reserve=reserve):
            return None
        return self._granted(new, exp)

    def _new_job(self, exp: experiment_pb2.Experiment, kind: int) -> job_pb2.Job:
        job = job_pb2.Job(id="j" + secrets.token_hex(6), experiment=exp.name, kind=kind,
                          state=J.JOB_STATE_QUEUED, max_attempts=exp.config.jobs.max_attempts)
        now_ts(job, "created_at")
        return job

    def _new_verify(self, exp: experiment_pb2.Experiment, worker: job_pb2.Worker):
        limits = ledger.open_rungs(self.store, exp)
        rungs = [r.name for r in exp.config.ladder.rungs if r.name in limits and fits(worker, r)]
        if not rungs:
            return None
        lowest = exp.config.ladder.rungs[0].name
        designs = self.store.verify_pool(exp.name, lowest, lowest in rungs)
        busy = self.store.verify_keys(exp.name)
        taken: list[str] = []  # repeat verifications another worker holds
        for _ in range(4):
            target = selection.choose_verify_target(designs, exp.config, rungs, busy,
                                                    self.evo.rng(exp), taken)
            if target is None:
                return None
            design, rung_name = target.design, target.rung
            rung = next(r for r in exp.config.ladder.rungs if r.name == rung_name)
            job = self._new_job(exp, J.JOB_KIND_VERIFY)
            job.design_id, job.rung = design.id, rung_name
            job.payload_json = json.dumps({
                "kind": "verify", "experiment": exp.name, "design_id": design.id,
                "digest": design.digest, "rung": rung_name, "tokens": rung.tokens_per_design,
                "benchmarks": [b.name for b in exp.config.benchmarks],
                "seed": target.training_seed, "repeat": target.repeat,
                "config_version": exp.config_version})
            new = self._leased(job, worker, exp)
            if self.store.claim_job(new, None, target.key, (exp.name, rung_name, limits[rung_name])):
                return self._granted(new, exp)
            if not target.repeat:
                return None
            taken.append(target.key)
        return None

    def _design_payload(self, exp: experiment_pb2.Experiment, payload: dict) -> str:
        designs = self.store.experiment_designs(exp.name)
        rng = self.evo.rng(exp)
        op = payload.get("operation") or selection.draw_operation(exp.config.design_mix,
                                                                  len(designs), rng)
        parents, reason = selection.select_parents(designs, selection.PARENT_COUNT.get(op, 1),
                                                   exp.config, rng)
        return json.dumps({"kind": "design", "experiment": exp.name, "operation": op,
                           "parents": [p.id for p in parents], "selection": reason,
                           "config_version": exp.config_version,
                           "seed": rng.getrandbits(31)})

    def _new_design(self, exp: experiment_pb2.Experiment, worker: job_pb2.Worker):
        mix = exp.config.design_mix
        open_jobs = self.store.count_jobs(exp.name, J.JOB_KIND_DESIGN,
                                          (J.JOB_STATE_QUEUED, J.JOB_STATE_LEASED))
        if open_jobs >= mix.max_open_design_jobs:
            return None
        if mix.max_designs:
            if self.store.design_count(exp.name) + open_jobs >= mix.max_designs:
                return None
        job = self._new_job(exp, J.JOB_KIND_DESIGN)
        new = self._leased(job, worker, exp)
        new.payload_json = self._design_payload(exp, {})
        if not self.store.claim_job(new, None):
            return None
        return self._granted(new, exp)

    def enqueue_design_jobs(self, experiment: str, count: int, operation: str) -> list[job_pb2.Job]:
        exp = self.evo.experiment(experiment)
        if not 1 <= count <= 1000:
            raise InvalidArgument("count", "must be within [1, 1000]")
        if operation and operation not in selection.PARENT_COUNT:
            raise InvalidArgument("operation", "must be mutation, crossover or scratch")
        jobs = []
        for _ in range(count):
            job = self._new_job(exp, J.JOB_KIND_DESIGN)
            job.payload_json = json.dumps({"operation": operation} if operation else {})
            self.store.insert_job(job)
            jobs.append(job)
            self.hub.publish(EV.EVENT_KIND_JOB_ENQUEUED, exp.name, job_id=job.id,
                             message="kind=design")
        self.work.notify()
        return jobs

    # -- calls under a lease ----------------------------------------------------------
    def held(self, job_id: str, fencing: int, worker_id: str, caller: TokenRecord,
             job: job_pb2.Job | None = None) -> job_pb2.Job:
        """The job if `worker_id` holds its current lease; the right error otherwise.
        `job`: the stored job when the caller has just read it."""
        if not job_id:
            raise InvalidArgument("job_id", "required")
        self.worker(worker_id, caller)
        job = job or self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        if job.state == J.JOB_STATE_LEASED and deadline_of(job) < time.time():
            self._expire(job)
            job = self.store.get_job(job_id)
        if job.fencing_token != fencing:
            raise FailedPrecondition(f"stale lease on {job_id}: fencing token {fencing}, "
                                     f"current {job.fencing_token}")
        if job.state != J.JOB_STATE_LEASED:
            raise FailedPrecondition(f"job {job_id} is {J.JobState.Name(job.state)}, not leased")
        if job.worker_id != worker_id:
            raise PermissionDenied(f"job {job_id} is leased to another worker")
        return job

    def design_slot(self, job_id: str, fencing: int, experiment: str, caller: TokenRecord
                    ) -> job_pb2.Job:
        """The DESIGN job a design is submitted under, if the caller holds its lease and
        the job has not produced a design yet (one design per job, of its experiment)."""
        job = self.store.get_job(job_id)
        if job is None:
            raise InvalidArgument("job_id", f"no job {brief(job_id)}")
        job = self.held(job_id, fencing, job.worker_id, caller, job)
        if job.kind != J.JOB_KIND_DESIGN:
            raise InvalidArgument("job_id", f"{job_id} is not a DESIGN job")
        if job.experiment != experiment:
            raise InvalidArgument("job_id", f"{job_id} belongs to experiment {job.experiment!r}")
        if job.design_id:
            raise JobProducedDesign(job_id, job.design_id)
        return job

    def produced(self, job: job_pb2.Job, design_id: str) -> None:
        """Record on the DESIGN job the design submitted under it."""
        for _ in range(3):  # a renewal may move the deadline in between
            new = copy_job(job)
            new.design_id = design_id
            if self.store.replace_job(new, job):
                return
            job = self.store.get_job(job.id)

    def _cancelled_for(self, job_id: str, fencing: int, worker_id: str) -> bool:
        job = self.store.get_job(job_id)
        return (job is not None and job.state == J.JOB_STATE_CANCELLED
                and job.fencing_token == fencing and job.worker_id == worker_id)

    def renew(self, job_id: str, fencing: int, worker_id: str, caller: TokenRecord
              ) -> tuple[job_pb2.Lease, bool]:
        """A renewed lease, and whether the job was cancelled (then the lease is empty)."""
        self.worker(worker_id, caller)  # only the worker's own token learns of a cancel
        if self._cancelled_for(job_id, fencing, worker_id):
            return job_pb2.Lease(job_id=job_id, fencing_token=fencing), True
        job = self.held(job_id, fencing, worker_id, caller)
        exp = self.evo.experiment(job.experiment)
        new = copy_job(job)
        now_ts(new, "lease_deadline", time.time() + self._lease_seconds(exp, job))
        if not self.store.replace_job(new, job):
            raise FailedPrecondition(f"lease on {job_id} changed while renewing; retry")
        self._touch(self.worker(worker_id, caller))
        return job_pb2.Lease(job_id=job_id, fencing_token=fencing, deadline=new.lease_deadline,
                             lease_seconds=self._lease_seconds(exp, job), worker_id=worker_id), False

    def progress(self, req: scheduler_pb2.ReportProgressRequest, caller: TokenRecord) -> bool:
        p = req.progress
        self.worker(req.worker_id, caller)
        if self._cancelled_for(p.job_id, req.fencing_token, req.worker_id):
            return True
        job = self.held(p.job_id, req.fencing_token, req.worker_id, caller)
        if not 0 <= p.fraction <= 1:
            raise InvalidArgument("progress.fraction", "must be within [0, 1]")
        if len(p.message) > 10_000 or len(p.metrics_json) > 100_000:
            raise InvalidArgument("progress.message", "message or metrics_json too long")
        data = {"fraction": p.fraction, "stage": p.stage}
        if p.metrics_json:
            try:
                data["metrics"] = json.loads(p.metrics_json)
            except json.JSONDecodeError as e:
                raise InvalidArgument("progress.metrics_json", f"not JSON: {e}") from None
        self.hub.publish(EV.EVENT_KIND_JOB_PROGRESS, job.experiment, job_id=job.id,
                         worker_id=req.worker_id, design_id=job.design_id,
                         message=p.message[:200], data=data)
        return False

    def complete(self, req: scheduler_pb2.CompleteJobRequest, caller: TokenRecord
                 ) -> tuple[job_pb2.Job, bool]:
        current = self.store.get_job(req.job_id)
        if (current is not None and current.state == J.JOB_STATE_SUCCEEDED
                and current.fencing_token == req.fencing_token and current.worker_id == req.worker_id):
            self.worker(req.worker_id, caller)
            return current, True
        job = self.held(req.job_id, req.fencing_token, req.worker_id, caller, current)
        exp = self.evo.experiment(job.experiment)
        result = req.result
        check_metrics(dict(result.metrics), result.metrics_json,
                      self.evo.config.limits.max_metrics_bytes, "result")
        results.check_stderr(result)
        if len(result.log_tail) > 100_000:
            raise InvalidArgument("result.log_tail", "longer than 100000 characters")
        new = copy_job(job)
        new.state = J.JOB_STATE_SUCCEEDED
        new.result_json = json_format.MessageToJson(result, indent=None)
        now_ts(new, "updated_at")
        design, ledger_op = None, ""
        if job.kind == J.JOB_KIND_DESIGN and result.design_id:
            produced = self.store.get_design(result.design_id)
            if produced is None or produced.job_id != job.id:
                raise InvalidArgument("result.design_id", f"no design {brief(result.design_id)} "
                                      f"was submitted under job {job.id}")
            new.design_id = result.design_id
            self.evo.record_fingerprints(job.experiment, _json_object(result.metrics_json).get(
                "parent_fingerprints"))
        elif job.kind == J.JOB_KIND_VERIFY:
            rung_result = results.rung_result(job, result, req.worker_id)
            design = self._verified(job, rung_result)  # the rung may since have been removed
            ledger_op = "commit"
        if not self.store.settle_job(new, job, ledger_op, design):
            again = self.store.get_job(req.job_id)
            if again.state == J.JOB_STATE_SUCCEEDED and again.fencing_token == req.fencing_token:
                return again, True
            raise FailedPrecondition(f"lease on {req.job_id} changed while completing")
        self.hub.publish(EV.EVENT_KIND_JOB_COMPLETED, job.experiment, job_id=job.id,
                         worker_id=req.worker_id, design_id=new.design_id,
                         message=f"kind={KIND_NAME[job.kind]}")
        if design is not None:
            self.evo.after_result(exp, design.id, job.rung)
        else:
            self.work.notify()  # a DESIGN slot is free again
        return new, False

    def _verified(self, job: job_pb2.Job, rung_result: design_pb2.RungResult
                  ) -> design_pb2.Design:
        """The job's design with the rung result of this VERIFY job (merged into the
        previous one for a repeat verification)."""
        stored = self.evo.get_design(job.design_id)
        previous = next((r for r in stored.results if r.rung == job.rung), None)
        if previous is not None and json.loads(job.payload_json or "{}").get("repeat"):
            rung_result = selection.merge_repeat(previous, rung_result)
        return self.evo.with_result(stored, rung_result)

    def next_after(self, done: job_pb2.Job, again: bool, req: scheduler_pb2.LeaseJobRequest,
                   caller: TokenRecord) -> tuple[job_pb2.Job, job_pb2.Lease] | None:
        """CompleteJob(lease_next): lease the next job under the request's filters and note
        it on the completed job, so a retried completion (the reply was lost) hands the
        same job over again instead of orphaning its lease."""
        if again and done.next_job_id:
            job = self.store.get_job(done.next_job_id)
            if (job is not None and job.state == J.JOB_STATE_LEASED
                    and job.worker_id == req.worker_id and deadline_of(job) > time.time()):
                exp = self.evo.experiment(job.experiment)
                return job, job_pb2.Lease(job_id=job.id, fencing_token=job.fencing_token,
                                          deadline=job.lease_deadline, worker_id=job.worker_id,
                                          lease_seconds=self._lease_seconds(exp, job))
            return None
        leased = self.try_lease(req, caller)
        if leased:
            noted = copy_job(done)
            noted.next_job_id = leased[0].id
            self.store.replace_job(noted, done)
        return leased

    def fail(self, req: scheduler_pb2.FailJobRequest, caller: TokenRecord) -> job_pb2.Job:
        job = self.held(req.job_id, req.fencing_token, req.worker_id, caller)
        error = req.error[:10_000] or "failed"
        if req.result_json:  # kept with the failed job, e.g. an abandoned design's trace
            try:
                json.loads(req.result_json)
            except json.JSONDecodeError as e:
                raise InvalidArgument("result_json", f"not JSON: {e}") from None
        if req.kind == scheduler_pb2.FAILURE_KIND_INFRASTRUCTURE:  # never the design's fault
            return self._requeue(job, f"infrastructure: {error}", design_fault=False,
                                 result_json=req.result_json)
        if req.retryable:  # result_json is kept only if this was the last attempt
            return self._requeue(job, error, result_json=req.result_json)
        return self._finish_failed(job, error, result_json=req.result_json)

    def release(self, req: scheduler_pb2.ReleaseJobRequest, caller: TokenRecord) -> job_pb2.Job:
        job = self.held(req.job_id, req.fencing_token, req.worker_id, caller)
        return self._requeue(job, req.reason[:1000] or "released", count_attempt=False)

    def cancel(self, job_id: str, reason: str) -> job_pb2.Job:
        job = self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        if job.state not in (J.JOB_STATE_QUEUED, J.JOB_STATE_LEASED):
            raise FailedPrecondition(f"job {job_id} is already {J.JobState.Name(job.state)}")
        new = copy_job(job)
        new.state, new.cancel_requested, new.error = J.JOB_STATE_CANCELLED, True, reason or "cancelled"
        refund = "refund" if job.kind == J.JOB_KIND_VERIFY and job.state == J.JOB_STATE_LEASED else ""
        if not self.store.settle_job(new, job, refund, release_dedupe=True):
            return self.cancel(job_id, reason)
        self.hub.publish(EV.EVENT_KIND_JOB_CANCELLED, job.experiment, job_id=job_id,
                         worker_id=job.worker_id, message=reason[:200])
        self.work.notify()
        return new

    def cancel_queued_at(self, experiment: str, rungs: list[str], reason: str) -> int:
        """Cancel the queued VERIFY jobs of these rungs (removed from the ladder: nobody
        would lease them); leased ones may still complete. Returns how many."""
        cancelled = 0
        for rung in rungs:
            while jobs := self.store.queued_jobs(experiment, J.JOB_KIND_VERIFY, rung, 100):
                for job in jobs:
                    try:
                        self.cancel(job.id, reason)
                        cancelled += 1
                    except FailedPrecondition:  # leased or done meanwhile
                        pass
        return cancelled

    def _requeue(self, job: job_pb2.Job, error: str, count_attempt: bool = True,
                 design_fault: bool = True, result_json: str = "") -> job_pb2.Job:
        if count_attempt and job.attempt >= job.max_attempts:
            return self._finish_failed(job, f"{error} (attempt {job.attempt}/{job.max_attempts})",
                                       design_fault, result_json)
        new = copy_job(job)
        new.state, new.worker_id, new.error = J.JOB_STATE_QUEUED, "", error
        new.ClearField("lease_deadline")
        if not count_attempt:
            new.attempt -= 1
        refund = "refund" if job.kind == J.JOB_KIND_VERIFY else ""
        if self.store.settle_job(new, job, refund):
            self.hub.publish(EV.EVENT_KIND_JOB_REQUEUED, job.experiment, job_id=job.id,
                             worker_id=job.worker_id, message=error[:200])
            self.work.notify()
        return new

    def _finish_failed(self, job: job_pb2.Job, error: str, design_fault: bool = True,
                       result_json: str = "") -> job_pb2.Job:
        """The job FAILED; a VERIFY job at the lowest rung also fails its design unless the
        failure was not the design's fault (infrastructure)."""
        new = copy_job(job)
        new.state, new.error = J.JOB_STATE_FAILED, error
        new.result_json = result_json or new.result_json
        design = None
        if job.kind == J.JOB_KIND_VERIFY and design_fault:
            exp = self.evo.experiment(job.experiment)
            found = self.store.get_design(job.design_id)
            if found is not None and exp.config.ladder.rungs[0].name == job.rung:
                design = design_pb2.Design()
                design.CopyFrom(found)
                design.state = design_pb2.DESIGN_STATE_FAILED
        if self.store.settle_job(new, job, "refund" if job.kind == J.JOB_KIND_VERIFY else "", design):
            self.hub.publish(EV.EVENT_KIND_JOB_FAILED, job.experiment, job_id=job.id,
                             worker_id=job.worker_id, design_id=job.design_id,
                             message=error[:200])
            self.work.notify()
        return new

    def _expire(self, job: job_pb2.Job) -> None:
        log.info("event=lease_expired job=%s worker=%s attempt=%d", job.id, job.worker_id,
                 job.attempt)
        self._requeue(job, "lease expired", design_fault=False)  # a lost worker, not the design

    def resume_leases(self) -> int:
        """After a restart: give every held lease a full lease period from now, so time
        the coordinator was down does not count against workers (a dead worker's lease
        still expires one period later). Returns how many leases were extended."""
        now, extended = time.time(), 0
        for job in self.store.list_jobs(JobQuery(state=J.JOB_STATE_LEASED, limit=1_000_000)):
            exp = self.evo.experiment(job.experiment)
            new = copy_job(job)
            now_ts(new, "lease_deadline", now + self._lease_seconds(exp, job))
            if deadline_of(new) > deadline_of(job) and self.store.replace_job(new, job):
                extended += 1
        if extended:
            log.info("event=leases_resumed count=%d", extended)
        return extended

    # -- background -------------------------------------------------------------------
    def reconcile(self, grace_seconds: float) -> int:
        """Finish the ledger moves that a crash between writes left half done (stores
        without transactions): for each hold older than the grace period, commit it if its
        job SUCCEEDED (writing the job's result to the design first if that write was
        lost), keep it while its job is leased under it, refund it otherwise. Returns how
        many holds were settled."""
        settled = 0
        for hold in self.store.unsettled_holds(time.time() - grace_seconds):
            commit = self._hold_outcome(hold)
            if commit is not None and self.store.settle_hold(hold, commit):
                settled += 1
                log.info("event=hold_settled experiment=%s rung=%s job=%s commit=%s",
                         hold.experiment, hold.rung, hold.job_id, commit)
        return settled

    def _hold_outcome(self, hold: Hold) -> bool | None:
        """True: commit, False: refund, None: the hold backs a live lease."""
        if hold.job_id.startswith(REPORT_PREFIX):  # a result reported by hand
            design = self.store.get_design(hold.job_id.removeprefix(REPORT_PREFIX))
            return design is not None and hold.rung in design_rungs(design)
        job = self.store.get_job(hold.job_id)
        if job is None or not hold.current:
            return False
        if job.state == J.JOB_STATE_LEASED:
            return None
        if job.state != J.JOB_STATE_SUCCEEDED:
            return False
        design = self.store.get_design(job.design_id)
        if design is not None and not any(r.job_id == job.id for r in design.results):
            result = json_format.Parse(job.result_json or "{}", job_pb2.JobResult())
            self.store.update_designs([self._verified(job, results.rung_result(
                job, result, job.worker_id))])
            self.evo.after_result(self.evo.experiment(job.experiment), job.design_id, job.rung)
        return True

    def reap(self) -> None:
        """Expire overdue leases and mark workers dead after missed heartbeats."""
        now = time.time()
        for job in self.store.expired_leases(now):
            self._expire(job)
        with self._lock:
            dead = [w for w in self._workers.values() if w.state in LIVE_STATES
                    and now - self._seen.get(w.id, now) > self.cfg.dead_after_seconds]
        for worker in dead:
            self._set_state(worker, J.WORKER_STATE_DEAD)
            self.hub.publish(EV.EVENT_KIND_WORKER_DEAD, "", worker_id=worker.id,
                             message=f"silent for {self.cfg.dead_after_seconds}s")
            for job in self.store.list_jobs(JobQuery(worker_id=worker.id,
                                                     state=J.JOB_STATE_LEASED, limit=1000)):
                self._expire(job)

    def forget_workers(self, after_seconds: float) -> int:
        """Delete workers DEAD or GONE for longer than `after_seconds`; returns how many."""
        now = time.time()
        with self._lock:
            gone = [w.id for w in self._workers.values() if w.state not in LIVE_STATES
                    and now - self._seen.get(w.id, now) > after_seconds]
            for worker_id in gone:
                self.store.delete_worker(worker_id)
                del self._workers[worker_id]
                self._seen.pop(worker_id, None)
        return len(gone)

"""Python SDK for the coordinator: one method per RPC, protobuf results (typed by the
generated .pyi stubs), per-call deadlines, and retries with backoff on UNAVAILABLE.

    from genesys.client import Coordinator
    with Coordinator() as c:                       # address/token from env or config
        exp = c.create_experiment("demo", ladder="micro:8,tiny:2")
        worker = c.register_worker("gpu-0", roles=["verify"], memory_bytes=80 << 30)
        job = c.lease_job(timeout=30)              # LeasedJob or None
        if job:
            c.report_progress(job, 0.5, stage="train")
            c.complete(job, metrics={"piqa": 0.61})

Address and token: arguments, else GENESYS_COORDINATOR / GENESYS_TOKEN, else the client
config file (GENESYS_CONFIG or ~/.config/genesys/client.toml: keys coordinator, token,
token_file, tls, ca_cert, client_cert, client_key, data_dir, timeout), else <data_dir>/address and <data_dir>/token
written by a local `genesys server start` (data_dir defaults to .genesys).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from genesys.config import load_config
from genesys.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    budget_pb2,
    budget_pb2_grpc,
    design_pb2,
    evolution_pb2,
    evolution_pb2_grpc,
    experiment_pb2,
    job_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

DEFAULT_ADDRESS = "127.0.0.1:50051"
ROLES = {"design": job_pb2.WORKER_ROLE_DESIGN, "verify": job_pb2.WORKER_ROLE_VERIFY}
KINDS = {"design": job_pb2.JOB_KIND_DESIGN, "verify": job_pb2.JOB_KIND_VERIFY}
TOKEN_ROLES = {"admin": auth_pb2.ROLE_ADMIN, "submitter": auth_pb2.ROLE_SUBMITTER,
               "worker": auth_pb2.ROLE_WORKER}


@dataclass
class ClientConfig:
    coordinator: str = ""
    token: str = ""
    token_file: str = ""
    tls: bool = False
    ca_cert: str = ""
    client_cert: str = ""      # with client_key: present a client certificate (mTLS)
    client_key: str = ""
    data_dir: str = ".genesys"
    timeout: float = 30.0


def client_config(path: str | None = None) -> ClientConfig:
    """The client settings: file (GENESYS_CONFIG or ~/.config/genesys/client.toml), env."""
    path = path or os.environ.get("GENESYS_CONFIG")
    if not path:
        default = Path.home() / ".config" / "genesys" / "client.toml"
        path = str(default) if default.is_file() else None
    return load_config(ClientConfig, path)


class CoordinatorError(Exception):
    """An RPC failed; `code` is the gRPC status code, `details` the server's message.

    The coordinator's rich error details (google.rpc.Status): `reason` and `metadata` of
    its ErrorInfo (e.g. reason "DUPLICATE_DESIGN", metadata["existing_id"]) and `field`,
    the first BadRequest field violation."""

    def __init__(self, code: grpc.StatusCode, details: str, method: str,
                 status: status_pb2.Status | None = None):
        self.code, self.details, self.method = code, details, method
        self.reason, self.metadata, self.field = "", {}, ""
        for packed in status.details if status else ():
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                self.reason, self.metadata = info.reason, dict(info.metadata)
            elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                packed.Unpack(bad)
                self.field = bad.field_violations[0].field if bad.field_violations else ""
        super().__init__(f"{method}: {code.name}: {details}")

    @classmethod
    def of(cls, error: grpc.RpcError, method: str) -> CoordinatorError:
        try:
            status = rpc_status.from_call(error)
        except ValueError:  # details that do not match the status: ignore them
            status = None
        return cls(error.code(), error.details(), method, status)

    @property
    def existing_id(self) -> str | None:
        """For ALREADY_EXISTS on SubmitDesign: the id of the design it duplicates."""
        return self.metadata.get("existing_id")


def _unavailable(error: BaseException) -> bool:
    return isinstance(error, CoordinatorError) and error.code == grpc.StatusCode.UNAVAILABLE


@dataclass
class LeasedJob:
    """A job together with the lease this worker holds on it."""

    job: job_pb2.Job
    lease: job_pb2.Lease

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def kind(self) -> str:
        return {v: k for k, v in KINDS.items()}[self.job.kind]

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.job.payload_json or "{}")

    @property
    def fencing_token(self) -> int:
        return self.lease.fencing_token


class Coordinator:
    """A connection to the coordinator. Thread-safe; close() it (or use `with`)."""

    def __init__(self, address: str | None = None, token: str | None = None, *,
                 timeout: float | None = None, tls: bool | None = None, ca_cert: str | None = None,
                 retries: int = 5, config: ClientConfig | None = None):
        cfg = config or client_config()
        data_dir = Path(cfg.data_dir).expanduser()
        self.address = address or cfg.coordinator or _read(data_dir / "address") or DEFAULT_ADDRESS
        self.token = (token or cfg.token or _read(Path(cfg.token_file).expanduser() if cfg.token_file
                                                  else None) or _read(data_dir / "token") or "")
        self.timeout = timeout if timeout is not None else cfg.timeout
        options = [("grpc.max_receive_message_length", 64 << 20),
                   ("grpc.max_send_message_length", 64 << 20)]
        ca_cert = ca_cert or cfg.ca_cert
        if (cfg.tls if tls is None else tls) or ca_cert:
            cert, key = cfg.client_cert, cfg.client_key
            creds = grpc.ssl_channel_credentials(
                Path(ca_cert).read_bytes() if ca_cert else None,
                Path(key).read_bytes() if key else None, Path(cert).read_bytes() if cert else None)
            self.channel = grpc.secure_channel(self.address, creds, options)
        else:
            self.channel = grpc.insecure_channel(self.address, options)
        self.evolution = evolution_pb2_grpc.EvolutionServiceStub(self.channel)
        self.scheduler = scheduler_pb2_grpc.SchedulerServiceStub(self.channel)
        self.budget = budget_pb2_grpc.BudgetServiceStub(self.channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.worker_id = ""
        self._retry = retry(retry=retry_if_exception(_unavailable), reraise=True,
                            stop=stop_after_attempt(max(1, retries)),
                            wait=wait_exponential(multiplier=0.2, max=5))

    # -- plumbing ---------------------------------------------------------------------
    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def _metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def _call(self, method, request, timeout: float | None = None):
        name = method._method.decode().rsplit("/", 1)[-1] if hasattr(method, "_method") else "rpc"

        def once():
            try:
                return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                raise CoordinatorError.of(e, name) from None

        return self._retry(once)()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the channel connects (raises grpc.FutureTimeoutError)."""
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    # -- experiments ------------------------------------------------------------------
    def create_experiment(self, name: str, config: experiment_pb2.ExperimentConfig | None = None,
                          description: str = "", ladder: str = "", seeds: Iterable[str] = (),
                          ) -> experiment_pb2.Experiment:
        """Create an experiment. `ladder` like "micro:8,tiny:2" sets rungs and budgets;
        `seeds` names seed designs (default: every installed seed)."""
        cfg = experiment_pb2.ExperimentConfig()
        if config is not None:
            cfg.CopyFrom(config)
        for part in filter(None, (p.strip() for p in ladder.split(","))):
            rung, _, budget = part.partition(":")
            cfg.ladder.rungs.add(name=rung, budget=int(budget) if budget else 0)
        cfg.seeds.extend(seeds)
        req = evolution_pb2.CreateExperimentRequest(name=name, description=description, config=cfg)
        return self._call(self.evolution.CreateExperiment, req, max(self.timeout, 120)).experiment

    def get_experiment(self, name: str) -> experiment_pb2.Experiment:
        return self._call(self.evolution.GetExperiment,
                          evolution_pb2.GetExperimentRequest(name=name)).experiment

    def list_experiments(self, limit: int = 100) -> list[experiment_pb2.Experiment]:
        req = evolution_pb2.ListExperimentsRequest(limit=limit)
        return list(self._call(self.evolution.ListExperiments, req).experiments)

    def update_experiment(self, name: str, config: experiment_pb2.ExperimentConfig | None = None,
                          state: str = "", fields: Iterable[str] = ()) -> experiment_pb2.Experiment:
        """Change the fields set in `config` (and the state), or exactly `fields` (field
        mask paths such as "config.ladder", "config.selection.p_explore", "state")."""
        req = evolution_pb2.UpdateExperimentRequest(name=name)
        if fields:
            req.update_mask.paths.extend(fields)
        if config is not None:
            req.config.CopyFrom(config)
        if state:
            req.state = experiment_pb2.ExperimentState.Value(f"EXPERIMENT_STATE_{state.upper()}")
        return self._call(self.evolution.UpdateExperiment, req).experiment

    # -- designs ----------------------------------------------------------------------
    def submit_design(self, experiment: str, *, tree: design_pb2.GauTree | None = None,
                      source: str = "", name: str = "", parents: Iterable[str] = (),
                      trace: design_pb2.DesignTrace | None = None, digest: str = "",
                      proposed: bool = False, job: LeasedJob | None = None) -> design_pb2.Design:
        """Submit a design (tree and/or source). Raises CoordinatorError ALREADY_EXISTS with
        `.existing_id` when the same digest is already in the experiment. Pass the DESIGN
        `job` that produced it so it is linked to the job (its lease must be current)."""
        req = evolution_pb2.SubmitDesignRequest(
            experiment=experiment, name=name, source=source, parents=list(parents), digest=digest,
            state=design_pb2.DESIGN_STATE_PROPOSED if proposed else 0)
        if tree is not None:
            req.tree.CopyFrom(tree)
        if trace is not None:
            req.trace.CopyFrom(trace)
        if job is not None:
            req.job_id, req.fencing_token = job.id, job.fencing_token
        return self._call(self.evolution.SubmitDesign, req).design

    def get_design(self, design_id: str, full: bool = True) -> design_pb2.Design:
        view = design_pb2.DESIGN_VIEW_FULL if full else design_pb2.DESIGN_VIEW_BASIC
        req = evolution_pb2.GetDesignRequest(id=design_id, view=view)
        return self._call(self.evolution.GetDesign, req).design

    def list_designs(self, experiment: str, *, state: str = "", quadrant: str = "",
                     verified_rung: str = "", parent: str = "", digest: str = "",
                     limit: int = 100, offset: int = 0, full: bool = False
                     ) -> list[design_pb2.Design]:
        req = evolution_pb2.ListDesignsRequest(
            experiment=experiment, verified_rung=verified_rung, parent=parent, digest=digest,
            limit=limit, offset=offset,
            view=design_pb2.DESIGN_VIEW_FULL if full else design_pb2.DESIGN_VIEW_BASIC,
            state=design_pb2.DesignState.Value(f"DESIGN_STATE_{state.upper()}") if state else 0,
            quadrant=design_pb2.Quadrant.Value(f"QUADRANT_{quadrant.upper()}") if quadrant else 0)
        return list(self._call(self.evolution.ListDesigns, req).designs)

    def lineage(self, design_id: str, direction: str = "both", depth: int = 0
                ) -> evolution_pb2.GetLineageResponse:
        directions = {"both": 0, "ancestors": evolution_pb2.LINEAGE_DIRECTION_ANCESTORS,
                      "descendants": evolution_pb2.LINEAGE_DIRECTION_DESCENDANTS}
        req = evolution_pb2.GetLineageRequest(design_id=design_id, direction=directions[direction],
                                              depth=depth)
        return self._call(self.evolution.GetLineage, req)

    def leaderboard(self, experiment: str, rung: str = "", limit: int = 20
                    ) -> list[evolution_pb2.LeaderboardEntry]:
        req = evolution_pb2.GetLeaderboardRequest(experiment=experiment, rung=rung, limit=limit)
        return list(self._call(self.evolution.GetLeaderboard, req).entries)

    def report_result(self, design_id: str, rung: str, metrics: Mapping[str, float],
                      metrics_json: str = "", stderr: Mapping[str, float] | None = None
                      ) -> design_pb2.Design:
        """Record a verification by hand; `stderr`: each metric's standard error."""
        req = evolution_pb2.ReportResultRequest(design_id=design_id, result=design_pb2.RungResult(
            rung=rung, metrics=dict(metrics), metrics_json=metrics_json, stderr=dict(stderr or {})))
        return self._call(self.evolution.ReportResult, req).design

    def select_parents(self, experiment: str, operation: str = "mutation", count: int = 0,
                       seed: int = 0) -> list[design_pb2.Design]:
        op = design_pb2.DesignOperation.Value(f"DESIGN_OPERATION_{operation.upper()}")
        req = evolution_pb2.SelectParentsRequest(experiment=experiment, operation=op, count=count,
                                                 seed=seed)
        return list(self._call(self.evolution.SelectParents, req).parents)

    def watch(self, experiment: str = "", kinds: Iterable[str] = (), after_seq: int | None = None,
              timeout: float | None = None) -> Iterator[design_pb2.Event]:
        """Stream events (kinds like "design_submitted"); ends on timeout or cancel.
        With `after_seq` (0: from the start) stored events after it are replayed first."""
        req = evolution_pb2.WatchRequest(
            experiment=experiment, after_seq=after_seq or 0, replay=after_seq is not None,
            kinds=[design_pb2.EventKind.Value(f"EVENT_KIND_{k.upper()}") for k in kinds])
        stream = self.evolution.Watch(req, timeout=timeout, metadata=self._metadata)
        try:
            yield from stream
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                raise CoordinatorError.of(e, "Watch") from None
        finally:
            stream.cancel()

    # -- workers and jobs -------------------------------------------------------------
    def register_worker(self, name: str, roles: Iterable[str] = ("verify",), *,
                        devices: Iterable[job_pb2.Device | Mapping] = (), memory_bytes: int = 0,
                        cpu_count: int = 0, experiments: Iterable[str] = (),
                        rungs: Iterable[str] = (), labels: Mapping[str, str] | None = None,
                        version: str = "", worker_id: str = "") -> scheduler_pb2.RegisterWorkerResponse:
        """Register (or re-register) this process as a worker; later calls use its id."""
        caps = job_pb2.WorkerCapabilities(
            roles=[ROLES[r] for r in roles], memory_bytes=memory_bytes, cpu_count=cpu_count,
            experiments=list(experiments), rungs=list(rungs), labels=dict(labels or {}),
            devices=[d if isinstance(d, job_pb2.Device) else job_pb2.Device(**d) for d in devices])
        req = scheduler_pb2.RegisterWorkerRequest(name=name, capabilities=caps, version=version,
                                                  worker_id=worker_id or self.worker_id)
        out = self._call(self.scheduler.RegisterWorker, req)
        self.worker_id = out.worker.id
        return out

    def heartbeat(self, leases: Iterable[LeasedJob] = (), draining: bool = False
                  ) -> scheduler_pb2.HeartbeatResponse:
        req = scheduler_pb2.HeartbeatRequest(
            worker_id=self.worker_id, draining=draining,
            leases=[scheduler_pb2.LeaseRef(job_id=j.id, fencing_token=j.fencing_token)
                    for j in leases])
        return self._call(self.scheduler.Heartbeat, req)

    def lease_job(self, timeout: float = 30.0, kinds: Iterable[str] = (), experiment: str = ""
                  ) -> LeasedJob | None:
        """Long-poll up to `timeout` s for a job; None when none came."""
        req = scheduler_pb2.LeaseJobRequest(worker_id=self.worker_id, experiment=experiment,
                                            kinds=[KINDS[k] for k in kinds], wait_seconds=timeout)
        out = self._call(self.scheduler.LeaseJob, req, timeout + max(10.0, self.timeout))
        return LeasedJob(out.job, out.lease) if out.HasField("job") else None

    def renew(self, job: LeasedJob) -> bool:
        """Extend the lease; True when the job was cancelled (stop working on it)."""
        req = scheduler_pb2.RenewLeaseRequest(job_id=job.id, fencing_token=job.fencing_token,
                                              worker_id=self.worker_id)
        out = self._call(self.scheduler.RenewLease, req)
        if not out.cancel_requested:
            job.lease.CopyFrom(out.lease)
        return out.cancel_requested

    def report_progress(self, job: LeasedJob, fraction: float, stage: str = "", message: str = "",
                        metrics: Mapping[str, Any] | None = None) -> bool:
        """Send a progress event; True when the job was cancelled."""
        progress = job_pb2.ProgressEvent(job_id=job.id, fraction=fraction, stage=stage,
                                         message=message,
                                         metrics_json=json.dumps(metrics) if metrics else "")
        req = scheduler_pb2.ReportProgressRequest(worker_id=self.worker_id, progress=progress,
                                                  fencing_token=job.fencing_token)
        return self._call(self.scheduler.ReportProgress, req).cancel_requested

    def complete(self, job: LeasedJob, *, metrics: Mapping[str, float] | None = None,
                 metrics_json: str | Mapping = "", design_id: str = "", wall_seconds: float = 0.0,
                 tokens_trained: int = 0, log_tail: str = "", lease_next: bool = False,
                 stderr: Mapping[str, float] | None = None, next_kinds: Iterable[str] = (),
                 next_experiment: str = "") -> scheduler_pb2.CompleteJobResponse:
        """Report success (idempotent: a retry returns already_completed=True). With
        `lease_next`, the response may carry the next job (see `next_leased`), of
        `next_kinds` / `next_experiment` as for lease_job. `stderr`: the standard error of
        each metric (same keys)."""
        if not isinstance(metrics_json, str):
            metrics_json = json.dumps(metrics_json)
        result = job_pb2.JobResult(metrics=dict(metrics or {}), metrics_json=metrics_json,
                                   design_id=design_id, wall_seconds=wall_seconds,
                                   tokens_trained=tokens_trained, log_tail=log_tail,
                                   stderr=dict(stderr or {}))
        req = scheduler_pb2.CompleteJobRequest(job_id=job.id, fencing_token=job.fencing_token,
                                               worker_id=self.worker_id, result=result,
                                               lease_next=lease_next,
                                               next_kinds=[KINDS[k] for k in next_kinds],
                                               next_experiment=next_experiment)
        return self._call(self.scheduler.CompleteJob, req)

    @staticmethod
    def next_leased(reply: scheduler_pb2.CompleteJobResponse) -> LeasedJob | None:
        """The job a `complete(..., lease_next=True)` reply handed over, if any."""
        return LeasedJob(reply.next_job, reply.next_lease) if reply.HasField("next_job") else None

    def fail(self, job: LeasedJob, error: str, retryable: bool = True,
             kind: str = "", result_json: str = "") -> job_pb2.Job:
        """Report a job that produced no result. `kind`: "infrastructure" (requeued; never
        marks the design failed) or "design" (the design's fault; with retryable=False a
        VERIFY job at the lowest rung fails the design). `result_json`: what the job
        produced anyway (kept once the job has failed for good)."""
        kinds = {"": scheduler_pb2.FAILURE_KIND_UNSPECIFIED,
                 "design": scheduler_pb2.FAILURE_KIND_DESIGN,
                 "infrastructure": scheduler_pb2.FAILURE_KIND_INFRASTRUCTURE}
        if kind not in kinds:
            raise ValueError(f"kind must be design or infrastructure, not {kind!r}")
        req = scheduler_pb2.FailJobRequest(job_id=job.id, fencing_token=job.fencing_token,
                                           worker_id=self.worker_id, error=error,
                                           retryable=retryable, kind=kinds[kind],
                                           result_json=result_json)
        return self._call(self.scheduler.FailJob, req).job

    def release(self, job: LeasedJob, reason: str = "") -> job_pb2.Job:
        """Hand the job back without using an attempt (e.g. when draining)."""
        req = scheduler_pb2.ReleaseJobRequest(job_id=job.id, fencing_token=job.fencing_token,
                                              worker_id=self.worker_id, reason=reason)
        return self._call(self.scheduler.ReleaseJob, req).job

    def deregister(self) -> job_pb2.Worker:
        req = scheduler_pb2.DeregisterWorkerRequest(worker_id=self.worker_id)
        return self._call(self.scheduler.DeregisterWorker, req).worker

    def cancel_job(self, job_id: str, reason: str = "") -> job_pb2.Job:
        req = scheduler_pb2.CancelJobRequest(job_id=job_id, reason=reason)
        return self._call(self.scheduler.CancelJob, req).job

    def get_job(self, job_id: str) -> job_pb2.Job:
        return self._call(self.scheduler.GetJob, scheduler_pb2.GetJobRequest(job_id=job_id)).job

    def list_jobs(self, experiment: str = "", state: str = "", kind: str = "",
                  worker_id: str = "", limit: int = 100) -> list[job_pb2.Job]:
        req = scheduler_pb2.ListJobsRequest(
            experiment=experiment, worker_id=worker_id, limit=limit,
            state=job_pb2.JobState.Value(f"JOB_STATE_{state.upper()}") if state else 0,
            kind=KINDS[kind] if kind else 0)
        return list(self._call(self.scheduler.ListJobs, req).jobs)

    def list_workers(self, include_dead: bool = False, limit: int = 100) -> list[job_pb2.Worker]:
        req = scheduler_pb2.ListWorkersRequest(include_dead=include_dead, limit=limit)
        return list(self._call(self.scheduler.ListWorkers, req).workers)

    def enqueue_design_jobs(self, experiment: str, count: int = 1, operation: str = ""
                            ) -> list[job_pb2.Job]:
        req = scheduler_pb2.EnqueueDesignJobsRequest(experiment=experiment, count=count,
                                                     operation=operation)
        return list(self._call(self.scheduler.EnqueueDesignJobs, req).jobs)

    # -- budget -----------------------------------------------------------------------
    def get_budget(self, experiment: str, entries: int = 0) -> budget_pb2.GetBudgetResponse:
        req = budget_pb2.GetBudgetRequest(experiment=experiment, include_entries=entries > 0,
                                          entries_limit=entries)
        return self._call(self.budget.GetBudget, req)

    def set_budget(self, experiment: str, rung: str, total: int) -> budget_pb2.BudgetLedger:
        req = budget_pb2.SetBudgetRequest(experiment=experiment, rung=rung, total=total)
        return self._call(self.budget.SetBudget, req).ledger

    # -- tokens -----------------------------------------------------------------------
    def create_token(self, name: str, role: str, ttl_seconds: int = 0
                     ) -> auth_pb2.CreateTokenResponse:
        req = auth_pb2.CreateTokenRequest(name=name, role=TOKEN_ROLES[role], ttl_seconds=ttl_seconds)
        return self._call(self.auth.CreateToken, req)

    def revoke_token(self, id_or_name: str) -> auth_pb2.TokenInfo:
        return self._call(self.auth.RevokeToken, auth_pb2.RevokeTokenRequest(id=id_or_name)).info

    def list_tokens(self) -> list[auth_pb2.TokenInfo]:
        return list(self._call(self.auth.ListTokens, auth_pb2.ListTokensRequest()).tokens)

    def whoami(self) -> auth_pb2.TokenInfo:
        return self._call(self.auth.WhoAmI, auth_pb2.WhoAmIRequest()).info


def _read(path: Path | None) -> str:
    try:
        return path.read_text().strip() if path else ""
    except OSError:
        return ""

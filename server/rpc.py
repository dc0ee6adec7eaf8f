"""gRPC servicers (asyncio). Each handler authenticates the caller, checks its role
(auth.POLICY) and the request's bounds (bounds.py), runs the synchronous logic on a thread
pool (so a slow store call never stalls the event loop) and maps errors.py exceptions to
status codes with google.rpc rich error details.

The logic is safe to run on several threads at once: the store's writes are conditional
(fencing token, state, ledger limits) and the in-memory caches hold their own locks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import grpc
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
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from . import ledger
from .auth import Authenticator
from .bounds import RequestBounds
from .errors import InvalidArgument, NotFound, ServiceError, brief, check_range
from .events import Overflow
from .evolution import Evolution
from .scheduler import Scheduler
from .store import JobQuery, TokenRecord, basic_view

log = logging.getLogger("genesys.server")
MAX_TTL_SECONDS = 10 * 366 * 86400  # CreateToken: at most ten years
REPLAY_PAGE = 1000


class Malformed:
    """A request whose bytes did not parse; handlers answer INVALID_ARGUMENT."""

    def __init__(self, type_name: str, error: Exception):
        self.problem = f"malformed {type_name}: {brief(str(error), 200)}"


def _lenient(message_class):
    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except DecodeError as e:
            return Malformed(message_class.DESCRIPTOR.name, e)

    return parse


def add_service(server: grpc.aio.Server, servicer, service: ServiceDescriptor) -> None:
    """Register a servicer like the generated add_*_to_server, except that undecodable
    requests reach the handler (as Malformed) instead of failing with UNKNOWN."""
    handlers = {}
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        make = (grpc.unary_stream_rpc_method_handler if method.server_streaming
                else grpc.unary_unary_rpc_method_handler)
        handlers[method.name] = make(getattr(servicer, method.name),
                                     request_deserializer=_lenient(request),
                                     response_serializer=response.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name,
                                                                          handlers),))


def _header(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value
    return None


async def abort(context: grpc.aio.ServicerContext, name: str, error: Exception) -> None:
    """End the call with the error's status; never echoes more than a bounded message."""
    if isinstance(error, ServiceError):
        log.info("rpc=%s status=%s detail=%s", name, error.code.name, brief(str(error), 300))
        await context.abort_with_status(rpc_status.to_status(error.status()))
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error("rpc=%s status=INTERNAL error=%s: %s\n%s", name, type(error).__name__,
              brief(str(error), 300), frames)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {name}")


def handler(fn):
    """Authenticate, authorise, bound-check and map errors for one unary RPC. A plain
    function runs on the thread pool; a coroutine (long polls) runs on the loop and
    sends its store calls to the pool itself."""
    name = fn.__name__
    on_loop = asyncio.iscoroutinefunction(fn)

    def admitted(self, request, header: str | None):
        return fn(self, request, self.admit(name, request, header))

    @functools.wraps(fn)
    async def wrapper(self, request, context):
        try:
            if on_loop:
                caller = await self.blocking(self.admit, name, request, _header(context))
                return await fn(self, request, caller)
            return await self.blocking(admitted, self, request, _header(context))  # one hop
        except Exception as e:
            await abort(context, name, e)

    return wrapper


class _Base:
    def __init__(self, auth: Authenticator, evolution: Evolution, scheduler: Scheduler,
                 pool: ThreadPoolExecutor):
        self.auth, self.evo, self.sched, self.pool = auth, evolution, scheduler, pool
        self.bounds = RequestBounds(evolution.config.limits)

    async def blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def admit(self, method: str, request, header: str | None) -> TokenRecord:
        """The caller, once the token, its role and the request's bounds are checked."""
        caller = self.auth.check(header, method)
        if isinstance(request, Malformed):
            raise InvalidArgument("request", request.problem)
        self.bounds.check(request)
        return caller


class EvolutionServicer(_Base, evolution_pb2_grpc.EvolutionServiceServicer):
    @handler
    def CreateExperiment(self, req, caller):
        exp, ids = self.evo.create_experiment(req, caller.name)
        return evolution_pb2.CreateExperimentResponse(experiment=self._with_stats(exp),
                                                      seed_design_ids=ids)

    def _with_stats(self, exp: experiment_pb2.Experiment) -> experiment_pb2.Experiment:
        out = experiment_pb2.Experiment()
        out.CopyFrom(exp)
        store = self.evo.store
        total, verified = store.design_count(exp.name), store.verified_count(exp.name)
        kinds = (job_pb2.JOB_KIND_DESIGN, job_pb2.JOB_KIND_VERIFY)
        out.stats.designs, out.stats.verified_designs = total, verified
        out.stats.queued_jobs = sum(store.count_jobs(exp.name, k, (job_pb2.JOB_STATE_QUEUED,))
                                    for k in kinds)
        out.stats.leased_jobs = sum(store.count_jobs(exp.name, k, (job_pb2.JOB_STATE_LEASED,))
                                    for k in kinds)
        return out

    @handler
    def GetExperiment(self, req, caller):
        return evolution_pb2.GetExperimentResponse(
            experiment=self._with_stats(self.evo.experiment(req.name)))

    @handler
    def ListExperiments(self, req, caller):
        check_range("limit", req.limit, 0, 10_000)
        exps = self.evo.experiments()[: req.limit or 100]
        return evolution_pb2.ListExperimentsResponse(experiments=[self._with_stats(e) for e in exps])

    @handler
    def UpdateExperiment(self, req, caller):
        exp, removed = self.evo.update_experiment(req)
        self.sched.cancel_queued_at(exp.name, removed, "rung removed from the ladder")
        return evolution_pb2.UpdateExperimentResponse(experiment=self._with_stats(exp))

    @handler
    def SubmitDesign(self, req, caller):
        held = []

        def lease_check(job_id: str, fencing: int) -> None:
            held.append(self.sched.design_slot(job_id, fencing, req.experiment, caller))

        design = self.evo.submit_design(req, caller.name, lease_check=lease_check)
        if held:
            self.sched.produced(held[0], design.id)
        return evolution_pb2.SubmitDesignResponse(design=design)

    @handler
    def GetDesign(self, req, caller):
        design = self.evo.get_design(req.id)
        if req.view == design_pb2.DESIGN_VIEW_BASIC:
            design = basic_view(design)
        return evolution_pb2.GetDesignResponse(design=design)

    @handler
    def ListDesigns(self, req, caller):
        designs, total = self.evo.list_designs(req)
        return evolution_pb2.ListDesignsResponse(designs=designs, total=total)

    @handler
    def GetLineage(self, req, caller):
        return self.evo.lineage(req)

    @handler
    def GetLeaderboard(self, req, caller):
        return evolution_pb2.GetLeaderboardResponse(entries=self.evo.leaderboard(req))

    @handler
    def ReportResult(self, req, caller):
        return evolution_pb2.ReportResultResponse(design=self.evo.report_result(req))

    @handler
    def SelectParents(self, req, caller):
        parents, reason = self.evo.select_parents(req)
        return evolution_pb2.SelectParentsResponse(parents=parents, reason=reason)

    async def Watch(self, req, context):
        try:
            await self.blocking(self.admit, "Watch", req, _header(context))
            if req.experiment:
                await self.blocking(self.evo.experiment, req.experiment)
        except Exception as e:
            await abort(context, "Watch", e)
        watcher = self.evo.hub.watch(req.experiment, set(req.kinds))
        try:
            async for event in self._events(req, watcher, context):
                yield event
        finally:
            watcher.close()

    async def _events(self, req, watcher, context):
        """Stored events after req.after_seq (with replay, a page at a time), then live ones."""
        last = req.after_seq
        try:
            while req.replay:
                await self.blocking(self.evo.hub.flush)
                page = await self.blocking(self.evo.store.events_after, last, req.experiment,
                                           REPLAY_PAGE)
                for event in page:
                    last = event.seq
                    if watcher.wants(event):
                        yield event
                if len(page) < REPLAY_PAGE:
                    break
        except Exception as e:
            await abort(context, "Watch", e)
        while True:
            try:
                event = await watcher.next()
            except Overflow:
                await context.abort(grpc.StatusCode.ABORTED,
                                    f"watch fell behind; resume with after_seq={last}")
            if event.seq > last:
                last = event.seq
                yield event


class SchedulerServicer(_Base, scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, *args, max_wait: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait

    @handler
    def RegisterWorker(self, req, caller):
        worker = self.sched.register(req, caller)
        cfg = self.sched.cfg
        return scheduler_pb2.RegisterWorkerResponse(worker=worker,
                                                    heartbeat_seconds=cfg.heartbeat_seconds,
                                                    lease_seconds=cfg.lease_seconds)

    @handler
    def Heartbeat(self, req, caller):
        return self.sched.heartbeat(req, caller)

    @handler
    async def LeaseJob(self, req, caller):
        check_range("wait_seconds", req.wait_seconds, 0, 600)
        deadline = time.monotonic() + min(req.wait_seconds, self.max_wait)
        while True:
            leased = await self.blocking(self.sched.try_lease, req, caller)
            if leased:
                return scheduler_pb2.LeaseJobResponse(job=leased[0], lease=leased[1])
            left = deadline - time.monotonic()
            if left <= 0:
                return scheduler_pb2.LeaseJobResponse()
            await self.sched.work.wait(min(left, self.sched.cfg.recheck_seconds))

    @handler
    def RenewLease(self, req, caller):
        lease, cancelled = self.sched.renew(req.job_id, req.fencing_token, req.worker_id, caller)
        return scheduler_pb2.RenewLeaseResponse(lease=lease, cancel_requested=cancelled)

    @handler
    def ReportProgress(self, req, caller):
        return scheduler_pb2.ReportProgressResponse(
            cancel_requested=self.sched.progress(req, caller))

    @handler
    def CompleteJob(self, req, caller):
        job, again = self.sched.complete(req, caller)
        out = scheduler_pb2.CompleteJobResponse(job=job, already_completed=again)
        if req.lease_next:  # eager dispatch: one RPC per cycle for busy workers
            leased = self.sched.next_after(job, again, scheduler_pb2.LeaseJobRequest(
                worker_id=req.worker_id, kinds=req.next_kinds, experiment=req.next_experiment),
                caller)
            if leased:
                out.next_job.CopyFrom(leased[0])
                out.next_lease.CopyFrom(leased[1])
        return out

    @handler
    def FailJob(self, req, caller):
        return scheduler_pb2.FailJobResponse(job=self.sched.fail(req, caller))

    @handler
    def ReleaseJob(self, req, caller):
        return scheduler_pb2.ReleaseJobResponse(job=self.sched.release(req, caller))

    @handler
    def CancelJob(self, req, caller):
        return scheduler_pb2.CancelJobResponse(job=self.sched.cancel(req.job_id, req.reason))

    @handler
    def GetJob(self, req, caller):
        job = self.evo.store.get_job(req.job_id)
        if job is None:
            raise NotFound(f"no job {req.job_id!r}")
        return scheduler_pb2.GetJobResponse(job=job)

    @handler
    def ListJobs(self, req, caller):
        check_range("limit", req.limit, 0, 10_000)
        jobs = self.evo.store.list_jobs(JobQuery(req.experiment, req.state, req.kind,
                                                 req.worker_id, limit=req.limit or 100))
        return scheduler_pb2.ListJobsResponse(jobs=jobs)

    @handler
    def ListWorkers(self, req, caller):
        check_range("limit", req.limit, 0, 1000)
        workers = self.sched.list_workers(req.include_dead, req.limit or 100)
        return scheduler_pb2.ListWorkersResponse(workers=workers)

    @handler
    def DeregisterWorker(self, req, caller):
        return scheduler_pb2.DeregisterWorkerResponse(worker=self.sched.deregister(req.worker_id,
                                                                                    caller))

    @handler
    def EnqueueDesignJobs(self, req, caller):
        jobs = self.sched.enqueue_design_jobs(req.experiment, req.count, req.operation)
        return scheduler_pb2.EnqueueDesignJobsResponse(jobs=jobs)


class BudgetServicer(_Base, budget_pb2_grpc.BudgetServiceServicer):
    @handler
    def GetBudget(self, req, caller):
        exp = self.evo.experiment(req.experiment)
        check_range("entries_limit", req.entries_limit, 0, 100_000)
        out = budget_pb2.GetBudgetResponse(ledger=ledger.ladder_view(self.evo.store, exp))
        if req.include_entries:
            out.entries.extend(self.evo.store.ledger_entries(exp.name, req.entries_limit or 100))
        return out

    @handler
    def SetBudget(self, req, caller):
        exp = self.evo.experiment(req.experiment)
        if req.rung not in {r.name for r in exp.config.ladder.rungs}:
            raise InvalidArgument("rung", f"{req.rung!r} is not a rung of {exp.name!r}")
        if req.total < 0:
            raise InvalidArgument("total", "must be >= 0")
        self.evo.store.set_budget(exp.name, req.rung, req.total)
        self.evo.hub.publish(design_pb2.EVENT_KIND_BUDGET_CHANGED, exp.name,
                             message=f"rung={req.rung} total={req.total}")
        self.evo.work.notify()
        return budget_pb2.SetBudgetResponse(ledger=ledger.ladder_view(self.evo.store, exp))


class AuthServicer(_Base, auth_pb2_grpc.AuthServiceServicer):
    @handler
    def CreateToken(self, req, caller):
        if not req.name or len(req.name) > 100:
            raise InvalidArgument("name", "required, at most 100 characters")
        if req.role not in (auth_pb2.ROLE_ADMIN, auth_pb2.ROLE_SUBMITTER, auth_pb2.ROLE_WORKER):
            raise InvalidArgument("role", "must be ADMIN, SUBMITTER or WORKER")
        check_range("ttl_seconds", req.ttl_seconds, 0, MAX_TTL_SECONDS)
        token, record = self.auth.create(req.name, req.role, req.ttl_seconds)
        return auth_pb2.CreateTokenResponse(token=token, info=record.info())

    @handler
    def RevokeToken(self, req, caller):
        return auth_pb2.RevokeTokenResponse(info=self.auth.revoke(req.id).info())

    @handler
    def ListTokens(self, req, caller):
        return auth_pb2.ListTokensResponse(tokens=[t.info() for t in self.evo.store.list_tokens()])

    @handler
    def WhoAmI(self, req, caller: TokenRecord):
        return auth_pb2.WhoAmIResponse(info=caller.info())

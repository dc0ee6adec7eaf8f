"""Crash injection at every write of a lease and of a completion, for both stores: the
store's driver raises before its k-th write (the process dies there), the coordinator
restarts on the same data (reconciling), and then nothing is reserved without a leased
job, nothing is committed twice, and every SUCCEEDED VERIFY job's result is on its design.
SQLite writes each step in one transaction; MongoDB is made safe by holds + reconciler."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

import mongomock
import pytest
from genesys.server.config import load_server_config
from genesys.server.events import EventHub, WorkSignal
from genesys.server.evolution import Evolution
from genesys.server.scheduler import Scheduler
from genesys.server.seeds import default_seeds_dir
from genesys.server.sqlite_store import SqliteStore
from genesys.server.store import JobQuery, TokenRecord, open_store
from genesys.server.tree_index import IndexedStore
from genesys.v1 import auth_pb2, budget_pb2, evolution_pb2, experiment_pb2, job_pb2
from genesys.v1 import scheduler_pb2 as S

ADMIN = TokenRecord("t0", "admin", auth_pb2.ROLE_ADMIN, "", 0.0)
WRITES = ("insert_one", "insert_many", "update_one", "update_many", "find_one_and_update",
          "replace_one", "delete_one", "delete_many")


class Crash(BaseException):
    """The process died here (BaseException: no handler in the server catches it)."""


class Writes:
    """Counts the store's writes and crashes before the `at`-th (0: never)."""

    def __init__(self):
        self.at, self.count = 0, 0

    def tick(self) -> None:
        self.count += 1
        if self.count == self.at:
            raise Crash(f"crash before write {self.count}")


class CountingConnection:
    def __init__(self, conn, writes: Writes):
        self._conn, self._writes = conn, writes

    def _counted(self, sql: str) -> None:
        if sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self._writes.tick()

    def execute(self, sql, *args):
        self._counted(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql, *args):
        self._counted(sql)
        return self._conn.executemany(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


@pytest.fixture(params=["sqlite", "mongomock"])
def backend(request, tmp_path, monkeypatch):
    writes = Writes()
    if request.param == "sqlite":
        original = SqliteStore._conn
        monkeypatch.setattr(SqliteStore, "_conn",
                            lambda self: CountingConnection(original(self), writes))
    else:
        for name in WRITES:
            method = getattr(mongomock.collection.Collection, name)

            def counted(self, *args, _method=method, **kwargs):
                writes.tick()
                return _method(self, *args, **kwargs)

            monkeypatch.setattr(mongomock.collection.Collection, name, counted)
    return request.param, writes, tmp_path


class World:
    """Evolution + scheduler over one store, as a coordinator process holds them."""

    def __init__(self, store, data_dir):
        config = load_server_config(None, data_dir=str(data_dir))
        self.store = store = IndexedStore(store)
        hub, work = EventHub(store), WorkSignal()
        self.evo = Evolution(store, hub, work, config, default_seeds_dir())
        self.sched = Scheduler(store, hub, work, self.evo, config)


def fresh(kind: str, data_dir):
    url = "" if kind == "sqlite" else f"mongomock://localhost/c{uuid.uuid4().hex[:8]}"
    return open_store(url, data_dir)


def restart(kind: str, store, data_dir) -> World:
    """A new process on the same data: SQLite reopens its file; mongomock keeps its data
    in the client, so the same store object stands for the database."""
    if kind == "sqlite":
        store.close()
        store = open_store("", data_dir)
    world = World(store, data_dir)
    world.sched.reconcile(grace_seconds=0)
    return world


def setup(world: World) -> str:
    cfg = experiment_pb2.ExperimentConfig()
    cfg.ladder.rungs.add(name="micro", budget=3)
    cfg.seeds.extend(["gpt", "retnet"])
    world.evo.create_experiment(evolution_pb2.CreateExperimentRequest(name="cx", config=cfg),
                                "admin")
    caps = job_pb2.WorkerCapabilities(roles=[job_pb2.WORKER_ROLE_VERIFY])
    return world.sched.register(S.RegisterWorkerRequest(name="w", worker_id="w1",
                                                        capabilities=caps), ADMIN).id


def lease(world: World, worker: str):
    return world.sched.try_lease(S.LeaseJobRequest(worker_id=worker,
                                                   kinds=[job_pb2.JOB_KIND_VERIFY]), ADMIN)


def complete(world: World, worker: str, job: job_pb2.Job, fencing: int):
    result = job_pb2.JobResult(metrics={"piqa": 0.6}, wall_seconds=1.0)
    return world.sched.complete(S.CompleteJobRequest(job_id=job.id, fencing_token=fencing,
                                                     worker_id=worker, result=result), ADMIN)


def check(world: World) -> tuple[int, int]:
    """The invariants; returns (reserved, committed) of the rung."""
    jobs = world.store.list_jobs(JobQuery(experiment="cx", kind=job_pb2.JOB_KIND_VERIFY))
    states = Counter(j.state for j in jobs)
    row = world.store.budget("cx")[0]
    assert row.reserved == states[job_pb2.JOB_STATE_LEASED], "a reservation without a lease"
    assert row.committed == states[job_pb2.JOB_STATE_SUCCEEDED], "committed twice or never"
    assert row.reserved + row.committed <= row.total
    commits = Counter(e.job_id for e in world.store.ledger_entries("cx", 1000)
                      if e.op == budget_pb2.LEDGER_OP_COMMIT)
    assert all(n == 1 for n in commits.values()), commits
    for job in jobs:
        if job.state == job_pb2.JOB_STATE_SUCCEEDED:
            design = world.store.get_design(job.design_id)
            assert [r.job_id for r in design.results if r.rung == "micro"] == [job.id]
            assert commits[job.id] == 1
    return row.reserved, row.committed


def crash_everywhere(kind: str, writes: Writes, data_dir, prepare: Callable, act: Callable,
                     finish: Callable) -> int:
    """For k = 1, 2, ...: a fresh store, `prepare`, crash at the k-th write of `act`,
    restart, check, `finish` (the worker retrying), check. Returns the writes of `act`."""
    k = 0
    while True:
        k += 1
        writes.at, writes.count = 0, 0
        store = fresh(kind, data_dir / f"run{k}")
        world = World(store, data_dir / f"run{k}")
        state = prepare(world)
        writes.at, writes.count = k, 0
        try:
            act(world, state)
            crashed = False
        except Crash:
            crashed = True
        writes.at = 0
        world = restart(kind, store, data_dir / f"run{k}")
        check(world)
        finish(world, state)
        assert check(world) == (0, 1), "after the retry: one unit committed, none reserved"
        world.store.close()
        if not crashed:
            return k - 1


def test_crash_at_every_write_of_a_lease(backend):
    kind, writes, data_dir = backend

    def act(world, worker):
        lease(world, worker)

    def finish(world, worker):
        leased = [j for j in world.store.list_jobs(JobQuery(state=job_pb2.JOB_STATE_LEASED))]
        job = leased[0] if leased else lease(world, worker)[0]
        complete(world, worker, job, job.fencing_token)

    count = crash_everywhere(kind, writes, data_dir, setup, act, finish)
    assert count >= 2, f"a lease writes ledger and job: only {count} writes seen"


def test_crash_at_every_write_of_a_completion(backend):
    kind, writes, data_dir = backend

    def prepare(world):
        worker = setup(world)
        job, lease_ = lease(world, worker)
        return worker, job, lease_.fencing_token

    def act(world, state):
        complete(world, *state)

    def finish(world, state):
        job, again = complete(world, *state)
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED

    count = crash_everywhere(kind, writes, data_dir, prepare, act, finish)
    assert count >= (1 if kind == "sqlite" else 3), f"only {count} writes seen"

"""The lease protocol: fencing, expiry, attempts, idempotent completion, cancel, release,
dead workers, capabilities, the budget ledger, and workers racing for jobs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from genesys.client import Coordinator, CoordinatorError
from genesys.v1 import design_pb2, experiment_pb2, job_pb2

GiB = 1 << 30


def make_exp(admin, name="lx", lease_seconds=30, max_attempts=3, ladder="micro:3,tiny:1",
             open_design_jobs=0, seeds=("gpt", "retnet")):
    cfg = experiment_pb2.ExperimentConfig()
    cfg.jobs.lease_seconds, cfg.jobs.max_attempts = lease_seconds, max_attempts
    cfg.design_mix.max_open_design_jobs = open_design_jobs or 1000
    admin.create_experiment(name, cfg, ladder=ladder, seeds=seeds)
    return name


@pytest.fixture
def worker(as_role):
    def make(roles=("verify",), **caps) -> Coordinator:
        client = as_role("worker")
        client.register_worker("w", roles=roles, **caps)
        return client

    return make


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(CoordinatorError) as err:
        call()
    return err.value.code


def test_verify_job_lifecycle_reserves_commits_and_records(admin, worker):
    exp = make_exp(admin)
    w = worker()
    job = w.lease_job(timeout=0)
    assert job.kind == "verify" and job.payload["rung"] == "micro" and job.job.attempt == 1
    design_id = job.payload["design_id"]
    assert admin.get_budget(exp).ledger.rungs[0].reserved == 1
    assert not w.report_progress(job, 0.5, stage="train", metrics={"loss": 3.0})
    w.renew(job)
    done = w.complete(job, metrics={"piqa": 0.6}, metrics_json={"loss": 2.9}, tokens_trained=100)
    assert done.job.state == job_pb2.JOB_STATE_SUCCEEDED and not done.already_completed
    again = w.complete(job, metrics={"piqa": 0.6})
    assert again.already_completed, "completion is idempotent"
    micro = admin.get_budget(exp).ledger.rungs[0]
    assert (micro.reserved, micro.committed) == (0, 1)
    design = admin.get_design(design_id)
    assert design.results[0].rung == "micro" and design.results[0].job_id == job.id
    assert design.state == design_pb2.DESIGN_STATE_VERIFIED


def test_every_design_gets_the_lowest_rung_before_promotion(admin, worker):
    exp = make_exp(admin, ladder="micro:2,tiny:1", seeds=("gpt", "retnet", "ttt"))
    w = worker()
    seen = []
    while (job := w.lease_job(timeout=0)) is not None:
        seen.append((job.payload["design_id"], job.payload["rung"]))
        w.complete(job, metrics={"piqa": 0.6 + 0.01 * len(seen)})
    assert [r for _, r in seen] == ["micro", "micro"], "micro budget 2, tiny needs 4 commits"
    admin.set_budget(exp, "micro", 8)
    while (job := w.lease_job(timeout=0)) is not None:
        seen.append((job.payload["design_id"], job.payload["rung"]))
        w.complete(job, metrics={"piqa": 0.6 + 0.01 * len(seen)})
    assert [r for _, r in seen] == ["micro"] * 3, "3 designs, budget released 0 of tiny"
    ledger = admin.get_budget(exp).ledger
    assert ledger.rungs[0].committed == 3 and ledger.rungs[1].released == 0


def test_stale_fencing_token_and_other_workers_are_refused(admin, worker):
    make_exp(admin, lease_seconds=1, max_attempts=5)
    a, b = worker(), worker()
    job = a.lease_job(timeout=0)
    time.sleep(1.5)  # the lease expires and is requeued
    retaken = b.lease_job(timeout=2)
    assert retaken.id == job.id and retaken.fencing_token == job.fencing_token + 1
    assert retaken.job.attempt == 2
    assert code_of(lambda: a.complete(job)) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: a.renew(job)) == grpc.StatusCode.FAILED_PRECONDITION
    stolen = type(job)(retaken.job, retaken.lease)
    assert code_of(lambda: a.complete(stolen)) == grpc.StatusCode.PERMISSION_DENIED
    assert b.complete(retaken, metrics={"piqa": 0.7}).job.state == job_pb2.JOB_STATE_SUCCEEDED


def test_expiry_requeues_until_attempts_run_out(admin, worker):
    exp = make_exp(admin, lease_seconds=1, max_attempts=2, seeds=("gpt",))
    w = worker()
    first = w.lease_job(timeout=0)
    time.sleep(1.4)
    second = w.lease_job(timeout=2)
    assert second.id == first.id and second.job.attempt == 2
    time.sleep(1.4)
    job = admin.get_job(first.id)
    assert job.state == job_pb2.JOB_STATE_FAILED and "expired" in job.error
    assert admin.get_budget(exp).ledger.rungs[0].reserved == 0, "refunded"
    design = admin.get_design(first.payload["design_id"])
    assert design.state == design_pb2.DESIGN_STATE_IMPLEMENTED, "a lost worker is not the design's fault"


def test_infrastructure_failures_are_retried_and_never_fail_the_design(admin, worker):
    exp = make_exp(admin, max_attempts=2, seeds=("gpt", "retnet"))
    w = worker()
    job = w.lease_job(timeout=0)
    slow = w.fail(job, "step time 10x the first steps", retryable=False, kind="infrastructure")
    assert slow.state == job_pb2.JOB_STATE_QUEUED and "infrastructure" in slow.error
    again = w.lease_job(timeout=0)
    assert again.id == job.id and again.job.attempt == 2
    assert w.fail(again, "host OOM", kind="infrastructure").state == job_pb2.JOB_STATE_FAILED
    assert admin.get_design(job.payload["design_id"]).state == design_pb2.DESIGN_STATE_IMPLEMENTED
    nan = w.lease_job(timeout=0)
    assert nan.payload["design_id"] != job.payload["design_id"]
    w.fail(nan, "loss is nan at step 3", retryable=False, kind="design")
    assert admin.get_design(nan.payload["design_id"]).state == design_pb2.DESIGN_STATE_FAILED
    assert admin.get_budget(exp).ledger.rungs[0].reserved == 0


def test_fail_release_and_cancel(admin, worker):
    exp = make_exp(admin, max_attempts=2)
    w = worker()
    job = w.lease_job(timeout=0)
    released = w.release(job, "draining")
    assert released.state == job_pb2.JOB_STATE_QUEUED and released.attempt == 0
    job = w.lease_job(timeout=0)
    assert job.job.attempt == 1
    assert w.fail(job, "oom", retryable=True).state == job_pb2.JOB_STATE_QUEUED
    job = w.lease_job(timeout=0)
    assert w.fail(job, "oom again", retryable=True).state == job_pb2.JOB_STATE_FAILED
    job = w.lease_job(timeout=0)
    admin.cancel_job(job.id, "not needed")
    assert w.renew(job) is True and w.report_progress(job, 0.1) is True
    assert w.heartbeat([job]).cancelled_job_ids == [job.id]
    assert code_of(lambda: w.complete(job)) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: admin.cancel_job(job.id)) == grpc.StatusCode.FAILED_PRECONDITION
    assert admin.get_budget(exp).ledger.rungs[0].reserved == 0


def test_capabilities_route_rungs_by_memory(admin, worker):
    cfg = experiment_pb2.ExperimentConfig()
    cfg.ladder.rungs.add(name="14M", budget=4, min_memory_bytes=2 * GiB)
    admin.create_experiment("mem", cfg, seeds=("gpt",))
    small = worker(memory_bytes=1 * GiB)
    assert small.lease_job(timeout=0) is None
    gpu = worker(devices=[{"kind": "cuda", "name": "h100", "memory_bytes": 80 * GiB}])
    job = gpu.lease_job(timeout=0)
    assert job.payload["rung"] == "14M"
    designer = worker(roles=("design",))
    djob = designer.lease_job(timeout=0)
    assert djob.kind == "design" and djob.payload["operation"] == "mutation"
    assert len(djob.payload["parents"]) == 1
    assert code_of(lambda: small.lease_job(timeout=0, kinds=["design"])) == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_design_job_links_the_submitted_design(admin, worker):
    exp = make_exp(admin, seeds=("gpt",))
    w = worker(roles=("design",))
    job = w.lease_job(timeout=0)
    parent = job.payload["parents"][0]
    source = admin.get_design(parent).source.replace("CONFIG = {", "CONFIG = {'x': 1, ", 1)
    design = w.submit_design(exp, source=source, parents=[parent], job=job)
    assert design.job_id == job.id and design.submitted_by.startswith("worker")
    done = w.complete(job, design_id=design.id)
    assert done.job.design_id == design.id
    with pytest.raises(CoordinatorError) as err:
        w.submit_design(exp, source=source.replace("'x': 1", "'x': 2"), job=job)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION, "the lease is over"


def test_long_poll_wakes_when_work_appears(admin, worker):
    exp = make_exp(admin, seeds=("gpt",), open_design_jobs=1)
    cfg = admin.get_experiment(exp).config
    cfg.design_mix.max_open_design_jobs = 1
    admin.update_experiment(exp, cfg)
    designer = worker(roles=("design",))
    held = designer.lease_job(timeout=0)
    assert designer.lease_job(timeout=0) is None, "one open design job at most"
    start = time.monotonic()
    threading.Timer(0.5, lambda: admin.enqueue_design_jobs(exp, 1, "scratch")).start()
    job = designer.lease_job(timeout=10)
    assert job is not None and job.payload["operation"] == "scratch"
    assert 0.4 < time.monotonic() - start < 3
    assert held.id != job.id


def test_dead_workers_lose_their_leases(admin, worker):
    make_exp(admin, seeds=("gpt",))
    w, other = worker(), worker()
    job = w.lease_job(timeout=0)
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:  # the fixture marks workers dead after 2 s
        other.heartbeat()
        states = {x.id: x.state for x in admin.list_workers(include_dead=True)}
        if states[w.worker_id] == job_pb2.WORKER_STATE_DEAD:
            break
        time.sleep(0.3)
    assert states[w.worker_id] == job_pb2.WORKER_STATE_DEAD
    assert states[other.worker_id] == job_pb2.WORKER_STATE_ALIVE
    assert admin.get_job(job.id).state == job_pb2.JOB_STATE_QUEUED
    assert w.heartbeat([job]).lost_job_ids == [job.id]


def test_racing_workers_never_share_a_job(admin, as_role):
    exp = make_exp(admin, seeds=("gpt",), open_design_jobs=1000)
    admin.enqueue_design_jobs(exp, 200)
    clients = []
    for i in range(32):
        c = as_role("worker")
        c.register_worker(f"r{i}", roles=("design",))
        clients.append(c)
    leased: list[str] = []
    lock = threading.Lock()

    def run(c: Coordinator) -> None:
        for _ in range(8):
            job = c.lease_job(timeout=1)
            if job is None:
                return
            with lock:
                leased.append(job.id)
            c.complete(job)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(run, clients))
    assert len(leased) == len(set(leased)) == 256
    done = admin.list_jobs(exp, state="succeeded", limit=1000)
    assert len(done) == 256 and {j.id for j in done} == set(leased)


def test_worker_cannot_use_another_tokens_worker_id(worker, as_role):
    w = worker()
    intruder = as_role("worker")
    intruder.worker_id = w.worker_id
    assert code_of(lambda: intruder.heartbeat()) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: intruder.lease_job(timeout=0)) == grpc.StatusCode.PERMISSION_DENIED


def test_the_whole_protocol_on_the_mongodb_store(make_server, tmp_path):
    server = make_server(**{"store.url": "mongomock://localhost/e2e"})
    with Coordinator(server.address, server.token, retries=1) as admin:
        exp = make_exp(admin, seeds=("gpt", "retnet"))
        admin.register_worker("m", roles=["verify", "design"])
        job = admin.lease_job(timeout=0)
        assert job.kind == "verify"
        admin.complete(job, metrics={"piqa": 0.7})
        assert admin.complete(job, metrics={"piqa": 0.7}).already_completed
        micro = admin.get_budget(exp).ledger.rungs[0]
        assert (micro.reserved, micro.committed) == (0, 1)
        assert admin.leaderboard(exp)[0].design_id == job.payload["design_id"]
        with pytest.raises(CoordinatorError) as err:
            admin.submit_design(exp, source=admin.get_design(job.payload["design_id"]).source)
        assert err.value.existing_id == job.payload["design_id"]


def test_complete_can_hand_over_the_next_job(admin, worker):
    exp = make_exp(admin, seeds=("gpt",), open_design_jobs=1000)
    w = worker(roles=("design",))
    job, seen = w.lease_job(timeout=0), []
    for _ in range(4):
        seen.append(job.id)
        job = w.next_leased(w.complete(job, lease_next=True))
    admin.update_experiment(exp, state="paused")
    assert w.next_leased(w.complete(job, lease_next=True)) is None, "nothing to hand over"
    seen.append(job.id)
    assert len(set(seen)) == 5
    assert {j.id for j in admin.list_jobs(exp, state="succeeded")} == set(seen)


def test_jobs_nobody_can_take_never_hide_one_a_worker_can(admin, worker):
    """Head-of-line blocking: 70 queued jobs of a paused experiment and queued VERIFY jobs
    too big for the worker come first in the queue; the one job it can take is leased."""
    big = make_exp(admin, "big", ladder="micro:80", seeds=("gpt", "retnet", "ttt"))
    cfg = admin.get_experiment(big).config
    cfg.ladder.rungs[0].min_memory_bytes = 64 * GiB
    admin.update_experiment(big, cfg)
    large = worker(memory_bytes=80 * GiB)
    for job in [large.lease_job(timeout=0, kinds=["verify"]) for _ in range(3)]:
        large.release(job)  # queued VERIFY jobs only a large worker can take
    paused = make_exp(admin, "paused")
    admin.enqueue_design_jobs(paused, 70)
    admin.update_experiment(paused, state="paused")
    open_exp = make_exp(admin, "open", open_design_jobs=1, seeds=("gpt",))
    waiting = admin.enqueue_design_jobs(open_exp, 1)[0]  # no new DESIGN job: one is open
    designer = worker(roles=("design",), experiments=[paused, open_exp])
    job = designer.lease_job(timeout=0)
    assert job is not None and job.id == waiting.id
    small = worker(memory_bytes=1 * GiB)
    first = small.lease_job(timeout=0)
    assert first.job.experiment == open_exp and first.payload["rung"] == "micro"
    small.release(first)  # gpt at micro is queued; nothing new can be made in open
    again = small.lease_job(timeout=0)
    assert again is not None and again.id == first.id, "not hidden by big's VERIFY jobs"


def test_a_failed_job_keeps_what_it_produced(admin, worker):
    make_exp(admin, "keep", max_attempts=1, open_design_jobs=1)
    w = worker(roles=("design",))
    job = w.lease_job(timeout=0)
    assert code_of(lambda: w.fail(job, "abandoned", result_json="{not json")) == \
        grpc.StatusCode.INVALID_ARGUMENT
    trace = '{"trace": {"abandoned_reason": "3 units failed"}}'
    failed = w.fail(job, "abandoned", retryable=False, result_json=trace)
    assert failed.state == job_pb2.JOB_STATE_FAILED
    assert admin.get_job(job.id).result_json == trace


def test_lease_next_keeps_the_filters_and_a_lost_reply_loses_no_lease(admin, worker):
    make_exp(admin, "one")
    other = make_exp(admin, "two")
    w = worker(roles=("verify", "design"))
    job = w.lease_job(timeout=0, kinds=["verify"], experiment=other)
    reply = w.complete(job, metrics={"piqa": 0.5}, lease_next=True, next_kinds=["verify"],
                       next_experiment=other)
    first = w.next_leased(reply)
    assert first.kind == "verify" and first.job.experiment == other
    again = w.complete(job, metrics={"piqa": 0.5}, lease_next=True, next_kinds=["verify"],
                       next_experiment=other)  # the first reply was lost
    assert again.already_completed and w.next_leased(again).id == first.id
    assert w.next_leased(again).fencing_token == first.fencing_token
    assert [j.id for j in admin.list_jobs(state="leased")] == [first.id], "nothing orphaned"


def test_update_experiment_masks_budgets_and_removed_rungs(admin, worker):
    exp = make_exp(admin, "upd", ladder="micro:3,tiny:1", seeds=("gpt", "retnet", "ttt"))
    partial = experiment_pb2.ExperimentConfig()
    partial.selection.p_explore = 0.5
    got = admin.update_experiment(exp, partial)
    assert [r.name for r in got.config.ladder.rungs] == ["micro", "tiny"], "ladder kept"
    assert got.config.selection.p_explore == pytest.approx(0.5)
    assert got.config.jobs.lease_seconds == 30, "unset fields keep their values"
    w = worker()
    held = [w.lease_job(timeout=0) for _ in range(2)]
    ladder = experiment_pb2.ExperimentConfig()
    ladder.ladder.rungs.add(name="micro", budget=1)
    with pytest.raises(CoordinatorError) as err:  # 2 reserved: a total of 1 is refused
        admin.update_experiment(exp, ladder, fields=["config.ladder"])
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert admin.get_experiment(exp).config_version == got.config_version, "nothing changed"
    ladder.ladder.rungs[0].budget = 5
    ladder.ladder.rungs.add(name="tiny", budget=1)
    assert admin.update_experiment(exp, ladder, fields=["config.ladder"]).config.ladder.rungs[0] \
        .budget == 5
    assert admin.get_budget(exp).ledger.rungs[0].total == 5, "the ledger follows the config"
    w.release(held[1])  # a queued VERIFY job at micro
    only_tiny = experiment_pb2.ExperimentConfig()
    only_tiny.ladder.rungs.add(name="tiny", budget=1)
    admin.update_experiment(exp, only_tiny, fields=["config.ladder"])
    assert admin.get_job(held[1].id).state == job_pb2.JOB_STATE_CANCELLED, "queued: settled"
    done = w.complete(held[0], metrics={"piqa": 0.6})  # leased at the removed rung
    assert done.job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert admin.get_design(held[0].payload["design_id"]).results[0].rung == "micro"
    with pytest.raises(CoordinatorError) as err:
        admin.update_experiment(exp, fields=["config.nope"])
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT

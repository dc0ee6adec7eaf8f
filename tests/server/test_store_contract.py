"""One contract for every Store backend: SQLite, MongoDB through mongomock, and a real
MongoDB when GENESYS_TEST_MONGO_URI is set."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from genesys.server.errors import AlreadyExists, DuplicateDesign, FailedPrecondition
from genesys.server.store import DesignQuery, JobQuery, TokenRecord, open_store
from genesys.v1 import design_pb2, experiment_pb2, job_pb2

MONGO_URI = os.environ.get("GENESYS_TEST_MONGO_URI", "")


@pytest.fixture(params=[
    "sqlite",
    "mongomock",
    pytest.param("mongo", marks=[pytest.mark.mongo,
                                 pytest.mark.skipif(not MONGO_URI, reason="no GENESYS_TEST_MONGO_URI")]),
])
def store(request, tmp_path):
    url = {"sqlite": "",
           "mongomock": f"mongomock://localhost/t{uuid.uuid4().hex[:8]}",
           "mongo": MONGO_URI.rstrip("/") + f"/genesys_test_{uuid.uuid4().hex[:8]}"}[request.param]
    s = open_store(url, tmp_path)
    s.kind, s.url = request.param, url
    yield s
    s.close()


def design(i: int, exp: str = "e", parents=(), digest: str | None = None) -> design_pb2.Design:
    return design_pb2.Design(id=f"d{i}", experiment=exp, digest=digest or f"h{i}", name=f"n{i}",
                             parents=list(parents), state=design_pb2.DESIGN_STATE_IMPLEMENTED)


def job(i: int, kind=job_pb2.JOB_KIND_DESIGN, exp: str = "e") -> job_pb2.Job:
    return job_pb2.Job(id=f"j{i}", experiment=exp, kind=kind, state=job_pb2.JOB_STATE_QUEUED)


class TestStoreContract:
    def test_experiments(self, store):
        store.create_experiment(experiment_pb2.Experiment(name="a", description="x"))
        store.create_experiment(experiment_pb2.Experiment(name="b"))
        with pytest.raises(AlreadyExists):
            store.create_experiment(experiment_pb2.Experiment(name="a"))
        assert [e.name for e in store.list_experiments()] == ["a", "b"]
        exp = store.get_experiment("a")
        exp.config_version = 2
        store.update_experiment(exp)
        assert store.get_experiment("a").config_version == 2
        assert store.get_experiment("zzz") is None

    def test_design_digest_is_unique_per_experiment(self, store):
        store.insert_design(design(1))
        with pytest.raises(DuplicateDesign) as err:
            store.insert_design(design(2, digest="h1"))
        assert err.value.existing_id == "d1"
        store.insert_design(design(3, exp="other", digest="h1"))
        assert store.get_design("d3").experiment == "other"
        assert store.get_design("nope") is None

    def test_design_queries_and_lineage(self, store):
        store.insert_design(design(1))
        store.insert_design(design(2, parents=["d1"]))
        store.insert_design(design(3, parents=["d1", "d2"]))
        d2 = store.get_design("d2")
        d2.results.add(rung="micro")
        d2.state = design_pb2.DESIGN_STATE_VERIFIED
        store.update_designs([d2])
        assert store.children_of("d1") == ["d2", "d3"]
        found, total = store.list_designs(DesignQuery("e", verified_rung="micro"))
        assert [d.id for d in found] == ["d2"] and total == 1
        found, total = store.list_designs(DesignQuery("e", parent="d2"))
        assert [d.id for d in found] == ["d3"]
        found, total = store.list_designs(DesignQuery("e", limit=2, offset=1))
        assert [d.id for d in found] == ["d2", "d3"] and total == 3
        found, _ = store.list_designs(DesignQuery("e", state=design_pb2.DESIGN_STATE_VERIFIED))
        assert [d.id for d in found] == ["d2"]
        assert [d.id for d in store.experiment_designs("e")] == ["d1", "d2", "d3"]

    def test_summaries_and_scores(self, store):
        d = design(1)
        d.source = "class A: ..."
        d.tree.units.add(name="A", code="class A: ...")
        d.trace.prompts.add(prompt="p")
        d.trace.proposal = "kept"
        store.insert_design(d)
        scored = design_pb2.Design(id="d1", fitness=0.5, confidence=4,
                                   quadrant=design_pb2.QUADRANT_GOOD_CONFIDENT)
        store.update_scores([scored])
        summary = store.experiment_designs("e")[0]
        assert not summary.source and not summary.HasField("tree") and not summary.trace.prompts
        assert summary.trace.proposal == "kept" and summary.fitness == 0.5
        full = store.get_design("d1")
        assert full.source and full.trace.prompts[0].prompt == "p"
        assert (full.confidence, full.quadrant) == (4, design_pb2.QUADRANT_GOOD_CONFIDENT)
        found, _ = store.list_designs(DesignQuery("e", quadrant=design_pb2.QUADRANT_GOOD_CONFIDENT))
        assert [x.id for x in found] == ["d1"]

    def test_replace_job_is_conditional(self, store):
        store.insert_job(job(1))
        queued = store.get_job("j1")
        leased = job_pb2.Job()
        leased.CopyFrom(queued)
        leased.state, leased.fencing_token, leased.worker_id = job_pb2.JOB_STATE_LEASED, 1, "w"
        leased.lease_deadline.FromSeconds(int(time.time()) - 5)
        assert store.replace_job(leased, queued)
        assert not store.replace_job(leased, queued), "a stale expectation must not write"
        assert store.get_job("j1").worker_id == "w"
        assert [j.id for j in store.expired_leases(time.time())] == ["j1"]
        assert store.count_jobs("e", job_pb2.JOB_KIND_DESIGN, (job_pb2.JOB_STATE_LEASED,)) == 1

    def test_job_queue_order_and_dedupe(self, store):
        for i in range(3):
            store.insert_job(job(i))
        store.insert_job(job(9, kind=job_pb2.JOB_KIND_VERIFY), dedupe_key="verify:d1:micro")
        with pytest.raises(AlreadyExists):
            store.insert_job(job(10, kind=job_pb2.JOB_KIND_VERIFY), dedupe_key="verify:d1:micro")
        cancelled = store.get_job("j9")
        cancelled.state = job_pb2.JOB_STATE_CANCELLED
        assert store.settle_job(cancelled, store.get_job("j9"), release_dedupe=True)
        store.insert_job(job(10, kind=job_pb2.JOB_KIND_VERIFY), dedupe_key="verify:d1:micro")
        queued = store.queued_jobs("e", job_pb2.JOB_KIND_DESIGN, "", 2)
        assert [j.id for j in queued] == ["j0", "j1"]
        assert store.queued_jobs("other", job_pb2.JOB_KIND_DESIGN, "", 5) == []
        store.insert_job(job_pb2.Job(id="v7", experiment="e", kind=job_pb2.JOB_KIND_VERIFY,
                                     state=job_pb2.JOB_STATE_QUEUED, rung="tiny"))
        assert [j.id for j in store.queued_jobs("e", job_pb2.JOB_KIND_VERIFY, "tiny", 5)] == ["v7"]
        assert len(store.queued_jobs("e", job_pb2.JOB_KIND_VERIFY, "", 5)) == 2  # j9 cancelled
        assert [j.id for j in store.list_jobs(JobQuery(kind=job_pb2.JOB_KIND_VERIFY))] == \
            ["v7", "j10", "j9"]

    def test_verify_keys_skip_cancelled(self, store):
        a = job_pb2.Job(id="v1", experiment="e", kind=job_pb2.JOB_KIND_VERIFY,
                        state=job_pb2.JOB_STATE_CANCELLED, design_id="d1", rung="micro")
        b = job_pb2.Job(id="v2", experiment="e", kind=job_pb2.JOB_KIND_VERIFY,
                        state=job_pb2.JOB_STATE_SUCCEEDED, design_id="d2", rung="micro")
        store.insert_job(a)
        store.insert_job(b)
        assert store.verify_keys("e") == {("d2", "micro")}

    def test_ledger_moves(self, store):
        store.set_budget("e", "micro", 2)
        assert store.ledger_reserve("e", "micro", 2, "j1")
        assert store.ledger_reserve("e", "micro", 2, "j2")
        assert not store.ledger_reserve("e", "micro", 2, "j3"), "over the limit"
        assert store.ledger_commit("e", "micro", "j1")
        assert store.ledger_refund("e", "micro", "j2")
        assert not store.ledger_refund("e", "micro", "j2"), "nothing left reserved"
        row = store.budget("e")[0]
        assert (row.total, row.reserved, row.committed) == (2, 0, 1)
        with pytest.raises(FailedPrecondition):
            store.set_budget("e", "micro", 0)
        store.set_budget("e", "micro", 5)
        assert store.budget("e")[0].total == 5
        ops = [e.op for e in store.ledger_entries("e")]
        assert len(ops) == 6 and ops[0] == 1  # SET last, newest first

    def test_workers_tokens_events(self, store):
        store.put_worker(job_pb2.Worker(id="w1", name="a"))
        store.put_worker(job_pb2.Worker(id="w1", name="b"))
        assert [w.name for w in store.list_workers()] == ["b"]
        store.insert_token(TokenRecord("t1", "alice", 1, "hash", 1.0))
        with pytest.raises(AlreadyExists):
            store.insert_token(TokenRecord("t2", "alice", 1, "hash", 1.0))
        assert store.revoke_token("alice").revoked
        assert store.get_token("t1").revoked and store.revoke_token("nobody") is None
        assert store.last_event_seq() == 0
        store.append_events([design_pb2.Event(seq=i + 1, experiment=x, kind=3)
                             for i, x in enumerate("aba")])
        store.append_events([design_pb2.Event(seq=4, experiment="a", kind=4)])
        assert store.last_event_seq() == 4
        assert [e.seq for e in store.events_after(1, "a")] == [3, 4]
        assert [e.seq for e in store.events_after(0, limit=2)] == [1, 2]
        assert store.prune_events(keep=2) == 2
        assert [e.seq for e in store.events_after(0)] == [3, 4]
        assert store.prune_events(keep=2) == 0 and store.last_event_seq() == 4
        store.delete_worker("w1")
        assert store.list_workers() == [] and store.get_worker("w1") is None

    def test_survives_reopen(self, store, tmp_path):
        if store.kind == "mongomock":
            pytest.skip(
                "mongomock keeps no data across clients; set GENESYS_TEST_MONGO_URI to "
                "run this against a real MongoDB"
            )
        store.insert_design(design(1))
        store.set_budget("e", "micro", 3)
        store.close()
        again = open_store(store.url, tmp_path)
        assert again.get_design("d1").digest == "h1"
        assert again.budget("e")[0].total == 3
        again.close()


@pytest.fixture(params=[
    "sqlite",
    pytest.param("mongo", marks=[pytest.mark.mongo,
                                 pytest.mark.skipif(not MONGO_URI, reason="no GENESYS_TEST_MONGO_URI")]),
])
def threaded_store(request, tmp_path):
    """Backends that threads may share (mongomock is single-threaded)."""
    url = "" if request.param == "sqlite" else (
        MONGO_URI.rstrip("/") + f"/genesys_test_{uuid.uuid4().hex[:8]}")
    s = open_store(url, tmp_path)
    yield s
    s.close()


def run_threads(target, count: int, *args) -> None:
    threads = [threading.Thread(target=target, args=args) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_reserves_never_exceed_the_limit(threaded_store):
    threaded_store.set_budget("e", "micro", 1000)
    wins = []
    run_threads(lambda: wins.append(sum(threaded_store.ledger_reserve("e", "micro", 25, "j")
                                        for _ in range(20))), 8)
    assert sum(wins) == 25 and threaded_store.budget("e")[0].reserved == 25


def test_concurrent_job_claims_are_exclusive(threaded_store):
    threaded_store.insert_job(job(1))
    queued = threaded_store.get_job("j1")
    winners = []

    def claim():
        new = job_pb2.Job()
        new.CopyFrom(queued)
        name = threading.current_thread().name
        new.state, new.worker_id, new.fencing_token = job_pb2.JOB_STATE_LEASED, name, 1
        if threaded_store.claim_job(new, queued):
            winners.append(name)

    run_threads(claim, 16)
    assert len(winners) == 1 and threaded_store.get_job("j1").worker_id == winners[0]


class TestCompoundJobWrites:
    def test_claim_inserts_with_budget_or_not_at_all(self, store):
        store.set_budget("e", "micro", 1)
        first = job(1, kind=job_pb2.JOB_KIND_VERIFY)
        assert store.claim_job(first, None, "verify:d1:micro", ("e", "micro", 1))
        assert not store.claim_job(job(2, kind=job_pb2.JOB_KIND_VERIFY), None, "verify:d2:micro",
                                   ("e", "micro", 1)), "budget spent"
        assert store.get_job("j2") is None
        store.set_budget("e", "micro", 3)
        assert not store.claim_job(job(3, kind=job_pb2.JOB_KIND_VERIFY), None, "verify:d1:micro",
                                   ("e", "micro", 3)), "dedupe key taken"
        assert store.budget("e")[0].reserved == 1, "a refused claim reserves nothing"

    def test_settle_commits_and_writes_design(self, store):
        store.set_budget("e", "micro", 2)
        store.insert_design(design(1))
        leased = job(1, kind=job_pb2.JOB_KIND_VERIFY)
        leased.state, leased.rung, leased.fencing_token = job_pb2.JOB_STATE_LEASED, "micro", 1
        assert store.claim_job(leased, None, "", ("e", "micro", 2))
        done = job_pb2.Job()
        done.CopyFrom(leased)
        done.state = job_pb2.JOB_STATE_SUCCEEDED
        d = store.get_design("d1")
        d.results.add(rung="micro", metrics={"piqa": 0.6})
        assert store.settle_job(done, leased, "commit", d)
        assert not store.settle_job(done, leased, "commit", d), "exactly once"
        row = store.budget("e")[0]
        assert (row.reserved, row.committed) == (0, 1)
        assert store.get_design("d1").results[0].metrics["piqa"] == pytest.approx(0.6)


def test_mongo_adopts_leases_reserved_before_holds(tmp_path):
    """A coordinator from before holds counted reservations only: after the upgrade the
    leased VERIFY jobs get holds, so their completions commit."""
    from genesys.server.mongo_store import JobDoc, LedgerDoc

    s = open_store(f"mongomock://localhost/t{uuid.uuid4().hex[:8]}", tmp_path)
    s.set_budget("e", "micro", 3)
    leased = job(1, kind=job_pb2.JOB_KIND_VERIFY)
    leased.state, leased.rung, leased.fencing_token = job_pb2.JOB_STATE_LEASED, "micro", 1
    s.insert_job(leased)
    LedgerDoc.objects(experiment="e", rung="micro").update_one(inc__reserved=1, inc__used=1)
    assert JobDoc.objects(key="j1").first().hold is None
    assert s.adopt_unheld_leases() == 1 and s.adopt_unheld_leases() == 0
    done = job_pb2.Job()
    done.CopyFrom(leased)
    done.state = job_pb2.JOB_STATE_SUCCEEDED
    assert s.settle_job(done, leased, "commit")
    row = s.budget("e")[0]
    assert (row.reserved, row.committed) == (0, 1)
    s.close()

"""The coordinator's safety invariants, checked over the public API after fuzzing, crashes
and chaos: budget never overspent, no job completed twice, no result lost or doubled."""

from __future__ import annotations

from collections import Counter

from genesys.client import Coordinator
from genesys.v1 import budget_pb2, job_pb2


def check_invariants(admin: Coordinator, experiment: str, by_hand: bool = False) -> None:
    """`by_hand`: results may also have been reported (and replaced) with ReportResult."""
    budget = admin.get_budget(experiment, entries=100_000)
    for rung in budget.ledger.rungs:
        assert rung.reserved >= 0 and rung.committed >= 0, rung
        assert rung.reserved + rung.committed <= rung.total, rung
    commits = Counter(e.job_id for e in budget.entries
                      if e.op == budget_pb2.LEDGER_OP_COMMIT and e.job_id != "manual")
    twice = [job for job, n in commits.items() if n > 1]
    assert not twice, f"jobs committed twice: {twice}"
    jobs = admin.list_jobs(experiment, limit=10_000)
    leased_verify = sum(1 for j in jobs if j.kind == job_pb2.JOB_KIND_VERIFY
                        and j.state == job_pb2.JOB_STATE_LEASED)
    assert sum(r.reserved for r in budget.ledger.rungs) == leased_verify, \
        "every reservation belongs to a leased VERIFY job"
    verified: Counter = Counter()
    for job in jobs:
        if job.kind == job_pb2.JOB_KIND_VERIFY and job.state == job_pb2.JOB_STATE_SUCCEEDED:
            design = admin.get_design(job.design_id, full=False)
            results = [r for r in design.results if r.rung == job.rung]
            assert results and (by_hand or results[0].job_id == job.id), \
                f"SUCCEEDED job {job.id}: no result of it on {job.design_id} at {job.rung}"
            assert job.id in commits, f"SUCCEEDED job {job.id} never committed its budget"
            verified[(job.design_id, job.rung)] += 1
    again = [key for key, n in verified.items() if n > 1]
    assert not again, f"designs verified twice at one rung: {again}"

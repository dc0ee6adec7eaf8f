"""Fitness over the API: functional duplicates refused by fingerprint, readable labels,
and VERIFY results stored with their standard errors, curves, throughput and memory."""

from __future__ import annotations

import json

import grpc
import pytest
from genesys.client import CoordinatorError
from genesys.v1 import design_pb2
from genesys.v1 import experiment_pb2 as E


def variant(source: str, tag: str) -> str:
    """The same design with a CONFIG key no unit reads: another digest, the same network."""
    return source.replace("CONFIG = {", f"CONFIG = {{'unread_{tag}': 1, ", 1)


def checked(fingerprint: str, label: str = "") -> design_pb2.DesignTrace:
    return design_pb2.DesignTrace(check_report_json=json.dumps({"fingerprint": fingerprint}),
                                  metadata_json=json.dumps({"label": label}))


def test_a_functional_duplicate_is_refused_naming_the_original(admin):
    admin.create_experiment("fp", ladder="micro:4", seeds=("gpt",))
    gpt = admin.list_designs("fp")[0]
    source = admin.get_design(gpt.id).source
    first = admin.submit_design("fp", source=variant(source, "a"), parents=[gpt.id],
                                trace=checked("f" * 40, "gpt:unread_a=1"))
    assert first.fingerprint == "f" * 40 and first.label == "gpt:unread_a=1"
    with pytest.raises(CoordinatorError) as err:
        admin.submit_design("fp", source=variant(source, "b"), trace=checked("f" * 40))
    assert err.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert err.value.existing_id == first.id and "same behaviour" in err.value.details
    other = admin.submit_design("fp", source=variant(source, "c"), trace=checked("e" * 40))
    assert other.id != first.id


def test_verify_results_keep_stderr_curves_throughput_and_memory(admin, as_role):
    cfg = E.ExperimentConfig(benchmarks=[E.Benchmark(name="bits_per_byte", random_baseline=8,
                                                     lower_is_better=True)])
    admin.create_experiment("vr", cfg, ladder="micro:4", seeds=("gpt", "retnet"))
    worker = as_role("worker")
    worker.register_worker("w", roles=("verify",))
    report = {"train": {"loss_curve": [{"step": s, "loss": 9.0 - s / 10, "tokens": 100 * s}
                                       for s in range(1, 301)],
                        "val_curve": [{"step": 300, "loss": 6.5, "tokens": 30000}],
                        "tokens_per_s": 1234.5, "peak_memory_bytes": 5 << 20}}
    job = worker.lease_job(timeout=0)
    assert job.payload["seed"] == 42 and job.payload["repeat"] == 0
    worker.complete(job, metrics={"bits_per_byte": 2.5}, stderr={"bits_per_byte": 0.01},
                    metrics_json=report)
    result = admin.get_design(job.payload["design_id"]).results[0]
    assert result.stderr["bits_per_byte"] == pytest.approx(0.01)
    assert len(result.train_curve) == 256, "thinned to the proto's limit"
    assert (result.train_curve[0].step, result.train_curve[-1].step) == (1, 300)
    assert result.val_curve[0].loss == pytest.approx(6.5) and result.val_curve[0].tokens == 30000
    assert result.tokens_per_second == pytest.approx(1234.5)
    assert result.peak_memory_bytes == 5 << 20 and result.training_seed == 42
    second = worker.lease_job(timeout=0)
    with pytest.raises(CoordinatorError) as err:
        worker.complete(second, metrics={"bits_per_byte": 2.0}, stderr={"bits_per_byte": -1})
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    worker.complete(second, metrics={"bits_per_byte": 2.0}, stderr={"bits_per_byte": 0.01})
    with pytest.raises(CoordinatorError) as err:
        admin.report_result(second.payload["design_id"], "micro", {"bits_per_byte": 2.0},
                            stderr={"ghost": 0.1})
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "ghost" in err.value.details
    designs = {d.id: d for d in admin.list_designs("vr")}
    assert designs[second.payload["design_id"]].fitness == pytest.approx(1.0)
    assert designs[job.payload["design_id"]].fitness_stderr > 0, "kept with the design"
    assert [e.rank for e in admin.leaderboard("vr")] == [1, 2], "0.5 bits apart: no tie"


def test_designs_within_noise_share_a_leaderboard_rank(admin, as_role):
    cfg = E.ExperimentConfig(benchmarks=[E.Benchmark(name="bits_per_byte", random_baseline=8,
                                                     lower_is_better=True)])
    admin.create_experiment("tie", cfg, ladder="micro:4", seeds=("gpt", "retnet", "ttt"))
    worker = as_role("worker")
    worker.register_worker("w", roles=("verify",))
    for bpb in (2.0, 2.01, 3.0):  # the first two are 0.3 standard errors apart
        job = worker.lease_job(timeout=0)
        worker.complete(job, metrics={"bits_per_byte": bpb}, stderr={"bits_per_byte": 0.03})
    board = admin.leaderboard("tie")
    assert [e.rank for e in board] == [1, 1, 3]


def test_design_jobs_record_seed_fingerprints_that_later_children_are_refused_by(admin, as_role):
    admin.create_experiment("sf", ladder="micro:4", seeds=("gpt",))
    gpt = admin.list_designs("sf")[0]
    assert gpt.fingerprint == "", "no checker ran on the seed"
    worker = as_role("worker")
    worker.register_worker("w", roles=("design",))
    job = worker.lease_job(timeout=0)
    assert job.kind == "design"
    source = admin.get_design(gpt.id).source
    child = worker.submit_design("sf", source=variant(source, "x"), parents=[gpt.id],
                                 trace=checked("c" * 40), job=job)
    worker.complete(job, design_id=child.id,
                    metrics_json={"parent_fingerprints": {gpt.id: "a" * 40, "d-other": "b" * 40}})
    assert admin.get_design(gpt.id).fingerprint == "a" * 40
    with pytest.raises(CoordinatorError) as err:
        admin.submit_design("sf", source=variant(source, "y"), trace=checked("a" * 40))
    assert err.value.existing_id == gpt.id

"""Values an outside client (grpc-js loading the protos) sent that broke the coordinator:
each is now refused before anything is written, with a bounded message, a rich error
detail naming the field, and no INTERNAL."""

from __future__ import annotations

import logging

import grpc
import pytest
from genesys.client import CoordinatorError
from genesys.v1 import (
    auth_pb2,
    design_pb2,
    evolution_pb2,
    experiment_pb2,
    job_pb2,
    scheduler_pb2,
)
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@pytest.fixture
def exp(admin):
    admin.create_experiment("hx", ladder="micro:4", seeds=("gpt", "retnet"))
    return "hx"


def refused(call) -> CoordinatorError:
    with pytest.raises(CoordinatorError) as err:
        call()
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, err.value
    return err.value


def test_huge_token_ttl_is_refused_and_tokens_stay_listable(admin):
    err = refused(lambda: admin.create_token("forever", "worker", ttl_seconds=10**12))
    assert err.field == "ttl_seconds" and err.reason == "INVALID_ARGUMENT"
    names = [t.name for t in admin.list_tokens()]
    assert "forever" not in names, "nothing is written for a refused request"
    assert admin.create_token("decade", "worker", ttl_seconds=86400 * 3650).info.expires_at.seconds


def test_unknown_enum_values_are_refused_not_stored(admin, as_role, exp):
    worker = as_role("worker")
    worker.register_worker("w", roles=["verify"])
    err = refused(lambda: worker._call(worker.scheduler.LeaseJob, scheduler_pb2.LeaseJobRequest(
        worker_id=worker.worker_id, kinds=[99])))
    assert err.field == "kinds[0]"
    refused(lambda: admin._call(admin.evolution.SelectParents, evolution_pb2.SelectParentsRequest(
        experiment=exp, operation=99)))
    err = refused(lambda: admin._call(admin.evolution.UpdateExperiment,
                                      evolution_pb2.UpdateExperimentRequest(name=exp, state=99)))
    assert err.field == "state"
    assert admin.get_experiment(exp).state == experiment_pb2.EXPERIMENT_STATE_ACTIVE
    assert worker.lease_job(timeout=0) is not None, "the experiment still leases"


def test_negative_measurements_are_refused_and_the_lease_kept(as_role, admin, exp):
    worker = as_role("worker")
    worker.register_worker("w", roles=["verify"])
    job = worker.lease_job(timeout=0)
    err = refused(lambda: worker.complete(job, metrics={"piqa": 0.5}, wall_seconds=-3))
    assert err.field == "result.wall_seconds"
    err = refused(lambda: worker.complete(job, metrics={"piqa": 0.5}, tokens_trained=-1))
    assert err.field == "result.tokens_trained"
    assert admin.get_job(job.id).state == job_pb2.JOB_STATE_LEASED
    assert not worker.complete(job, metrics={"piqa": 0.5}).already_completed


def test_huge_ids_are_refused_with_a_short_message_and_short_logs(admin, as_role, caplog):
    caplog.set_level(logging.INFO, logger="genesys.server")
    huge = "x" * 1_000_000
    err = refused(lambda: admin.get_experiment(huge))
    assert len(err.details) < 1100 and err.field == "name"
    worker = as_role("worker")
    err = refused(lambda: worker.register_worker("w", roles=["verify"], worker_id=huge))
    assert err.field == "worker_id"
    refused(lambda: worker.register_worker("w", roles=["verify"], labels={"k": huge}))
    refused(lambda: worker.register_worker(huge[:201], roles=["verify"]))
    assert admin.list_workers(include_dead=True) == []
    assert max(len(r.getMessage()) for r in caplog.records) < 2000, "no request is logged whole"


def test_empty_ids_are_invalid_argument_everywhere(admin):
    for call in (lambda: admin.get_design(""), lambda: admin.get_job(""),
                 lambda: admin.get_experiment(""), lambda: admin.lineage(""),
                 lambda: admin.get_budget(""), lambda: admin.cancel_job(""),
                 lambda: admin.revoke_token("")):
        refused(call)


def test_rich_error_details_over_raw_grpc(admin, exp):
    """What a client in another language reads: google.rpc.Status in the trailers."""
    design = admin.get_design(admin.list_designs(exp)[0].id)
    request = evolution_pb2.SubmitDesignRequest(experiment=exp, source=design.source)
    with pytest.raises(grpc.RpcError) as err:
        admin.evolution.SubmitDesign(request, metadata=admin._metadata)
    status = rpc_status.from_call(err.value)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("DUPLICATE_DESIGN", "genesys.v1")
    assert info.metadata["existing_id"] == design.id
    request = auth_pb2.CreateTokenRequest(name="t", role=auth_pb2.ROLE_WORKER, ttl_seconds=-1)
    with pytest.raises(grpc.RpcError) as err:
        admin.auth.CreateToken(request, metadata=admin._metadata)
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in rpc_status.from_call(err.value).details)
    assert bad.field_violations[0].field == "ttl_seconds"


def test_design_trace_limits_still_allow_real_traces(admin, exp):
    design = admin.get_design(admin.list_designs(exp)[0].id)
    trace = design_pb2.DesignTrace(proposal="p" * 50_000, notes=["n"] * 2000)
    trace.prompts.add(prompt="q" * 100_000, response="r" * 100_000)
    source = design.source.replace("CONFIG = {", "CONFIG = {'t': 1, ", 1)
    assert admin.submit_design(exp, source=source, trace=trace).id


def test_an_existing_token_file_becomes_private(tmp_path):
    from genesys.server.testing import local_coordinator

    data = tmp_path / "d"
    data.mkdir()
    (data / "token").write_text("old\n")
    (data / "token").chmod(0o644)
    with local_coordinator(data) as server:
        assert (data / "token").stat().st_mode & 0o777 == 0o600
        assert server.token != "old"


def test_design_jobs_produce_one_design_of_their_own_experiment(admin, as_role, exp):
    admin.create_experiment("other", ladder="micro:1", seeds=("gpt",))
    worker = as_role("worker")
    worker.register_worker("d", roles=["design"], experiments=[exp])
    job = worker.lease_job(timeout=0)
    source = admin.get_design(admin.list_designs(exp)[0].id).source
    one = source.replace("CONFIG = {", "CONFIG = {'j': 1, ", 1)
    two = source.replace("CONFIG = {", "CONFIG = {'j': 2, ", 1)
    err = refused(lambda: worker.submit_design("other", source=one, job=job))
    assert err.field == "job_id"
    seed = admin.list_designs(exp)[0].id
    err = refused(lambda: worker.complete(job, design_id=seed))
    assert err.field == "result.design_id", "a design not submitted under the job"
    made = worker.submit_design(exp, source=one, job=job)
    with pytest.raises(CoordinatorError) as again:
        worker.submit_design(exp, source=two, job=job)
    assert again.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert again.value.reason == "JOB_PRODUCED_DESIGN" and again.value.existing_id == made.id
    assert worker.complete(job, design_id=made.id).job.design_id == made.id


def test_a_cancel_is_told_only_to_the_lease_holder(admin, as_role, exp):
    holder, other = as_role("worker"), as_role("worker")
    holder.register_worker("h", roles=["verify"])
    other.register_worker("o", roles=["verify"])
    job = holder.lease_job(timeout=0)
    admin.cancel_job(job.id, "stop")
    spy = scheduler_pb2.RenewLeaseRequest(job_id=job.id, fencing_token=job.fencing_token,
                                          worker_id=holder.worker_id)
    with pytest.raises(CoordinatorError) as err:
        other._call(other.scheduler.RenewLease, spy)
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert holder.renew(job) is True

"""Experiments, designs, results, lineage, budget, auth and events over real gRPC."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from genesys.client import Coordinator, CoordinatorError
from genesys.design import load_design
from genesys.v1 import design_pb2, evolution_pb2, experiment_pb2
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def seed_source(admin: Coordinator, exp: str, name: str = "gpt") -> str:
    design = next(d for d in admin.list_designs(exp) if d.name == name)
    return admin.get_design(design.id).source


def variant(source: str, tag: str) -> str:
    """The same design with a changed constant, so its digest differs."""
    return source.replace("CONFIG = {", f"CONFIG = {{'variant_tag': {tag!r}, ", 1)


@pytest.fixture
def exp(admin):
    admin.create_experiment("exp1", ladder="micro:4,tiny:1")
    return "exp1"


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(CoordinatorError) as err:
        call()
    return err.value.code


def test_experiment_create_registers_seeds_and_defaults(admin, exp):
    got = admin.get_experiment(exp)
    assert [r.name for r in got.config.ladder.rungs] == ["micro", "tiny"]
    assert got.config.selection.p_explore == pytest.approx(0.2)
    assert got.config.design_mix.crossover_unlock == 10 and got.config_version == 1
    seeds = admin.list_designs(exp)
    assert {d.name for d in seeds} >= {"gpt"} and all(d.seed for d in seeds)
    assert got.stats.designs == len(seeds)
    assert code_of(lambda: admin.create_experiment(exp)) == grpc.StatusCode.ALREADY_EXISTS
    assert [e.name for e in admin.list_experiments()] == [exp]
    updated = admin.update_experiment(exp, state="paused")
    assert updated.state == experiment_pb2.EXPERIMENT_STATE_PAUSED


def test_seed_trees_match_the_lmade_parser(admin, exp):
    d = admin.get_design(next(d.id for d in admin.list_designs(exp) if d.name == "gpt"))
    local = load_design(d.source + "\n", name="gpt")
    assert d.digest == local.digest and d.tree == local.to_proto()


def test_submit_get_duplicate_and_lineage(admin, exp):
    source = seed_source(admin, exp)
    parent = admin.list_designs(exp)[0].id
    child = admin.submit_design(exp, source=variant(source, "a"), name="child", parents=[parent])
    assert child.state == design_pb2.DESIGN_STATE_IMPLEMENTED and child.tree.root
    grandchild = admin.submit_design(exp, tree=load_design(variant(source, "b")).to_proto(),
                                     name="grandchild", parents=[child.id])
    with pytest.raises(CoordinatorError) as err:
        admin.submit_design(exp, source=variant(source, "a"))
    assert err.value.code == grpc.StatusCode.ALREADY_EXISTS and err.value.existing_id == child.id
    lineage = admin.lineage(child.id)
    assert {d.id for d in lineage.designs} == {parent, child.id, grandchild.id}
    assert {(e.parent, e.child) for e in lineage.edges} == {(parent, child.id),
                                                            (child.id, grandchild.id)}
    up = admin.lineage(grandchild.id, "ancestors", depth=1)
    assert {d.id for d in up.designs} == {grandchild.id, child.id}
    assert [d.id for d in admin.list_designs(exp, parent=child.id)] == [grandchild.id]
    basic = admin.list_designs(exp)[0]
    assert not basic.source and not basic.HasField("tree"), "lists return the basic view"


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.ClearField("source"), "tree"),
    (lambda r: setattr(r, "source", "def broken(:\n"), "source"),
    (lambda r: setattr(r, "source", "x" * 300_000), "source"),
    (lambda r: r.parents.append("nope"), "parents[0]"),
    (lambda r: setattr(r, "digest", "0" * 64), "digest"),
    (lambda r: setattr(r, "state", design_pb2.DESIGN_STATE_VERIFIED), "state"),
    (lambda r: r.trace.notes.append("n" * 2_100_000), "trace"),
    (lambda r: setattr(r, "source", "/etc/passwd.py"), "source"),
])
def test_bad_designs_are_invalid_argument_naming_the_field(admin, exp, mutate, field):
    req = evolution_pb2.SubmitDesignRequest(experiment=exp, source=variant(seed_source(admin, exp), "z"))
    mutate(req)
    with pytest.raises(CoordinatorError) as err:
        admin._call(admin.evolution.SubmitDesign, req)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details.startswith(field), err.value.details
    assert admin.get_experiment(exp).name == exp, "the server keeps serving"


def test_bad_tree_and_config_name_the_field(admin, exp):
    tree = design_pb2.GauTree(name="t", root="Missing", config_json="{}")
    tree.units.add(name="A", code="class A: pass")
    with pytest.raises(CoordinatorError) as err:
        admin.submit_design(exp, tree=tree)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "tree" in err.value.details
    bad = experiment_pb2.ExperimentConfig()
    bad.selection.p_explore = 2
    with pytest.raises(CoordinatorError) as err:
        admin.create_experiment("exp2", bad)
    assert "config.selection.p_explore" in err.value.details
    nan = experiment_pb2.ExperimentConfig()
    nan.ladder.selection_ratio = float("nan")
    nan.benchmarks.add(name="piqa", random_baseline=float("inf"))
    with pytest.raises(CoordinatorError) as err:
        admin.create_experiment("exp2", nan)
    assert err.value.details.startswith("config.ladder.selection_ratio")
    nan.ladder.selection_ratio = 4
    with pytest.raises(CoordinatorError) as err:
        admin.create_experiment("exp2", nan)
    assert err.value.details.startswith("config.benchmarks[0].random_baseline")
    with pytest.raises(CoordinatorError) as err:
        admin.create_experiment("Bad Name!")
    assert err.value.details.startswith("name")
    with pytest.raises(CoordinatorError) as err:
        admin.create_experiment("exp3", ladder="micro:1,huge:2")
    assert "ladder.rungs[1].name" in err.value.details


def test_results_rescore_and_leaderboard(admin, exp):
    ids = [d.id for d in admin.list_designs(exp)][:3]
    for i, design_id in enumerate(ids):
        admin.report_result(design_id, "micro", {"piqa": 0.55 + 0.05 * i, "hellaswag": 0.3})
    board = admin.leaderboard(exp)
    assert [e.design_id for e in board[:3]] == ids[::-1]
    assert board[0].fitness == pytest.approx(1.0) and board[0].rank == 1
    micro = admin.leaderboard(exp, rung="micro")
    assert len(micro) == 3 and micro[0].metrics["piqa"] == pytest.approx(0.65)
    assert admin.get_design(ids[2]).state == design_pb2.DESIGN_STATE_VERIFIED
    assert code_of(lambda: admin.report_result(ids[0], "nope", {"piqa": 1})) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: admin.report_result(ids[0], "micro", {"piqa": float("nan")})) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert [d.id for d in admin.list_designs(exp, verified_rung="micro")] == ids
    fourth = admin.list_designs(exp)[3].id
    admin.report_result(fourth, "micro", {"piqa": 0.5})
    assert code_of(lambda: admin.report_result(admin.list_designs(exp)[4].id, "micro",
                                               {"piqa": 0.5})) == grpc.StatusCode.RESOURCE_EXHAUSTED
    admin.report_result(fourth, "micro", {"piqa": 0.52})  # replacing a result costs nothing
    assert admin.get_budget(exp).ledger.rungs[0].committed == 4


def test_budget_show_and_set(admin, exp):
    ledger = admin.get_budget(exp).ledger
    assert [(r.rung, r.total, r.released) for r in ledger.rungs] == [("micro", 4, 4), ("tiny", 1, 0)]
    ledger = admin.set_budget(exp, "micro", 10)
    assert ledger.rungs[0].total == 10 and ledger.rungs[0].available == 10
    assert code_of(lambda: admin.set_budget(exp, "nope", 1)) == grpc.StatusCode.INVALID_ARGUMENT
    entries = admin.get_budget(exp, entries=10).entries
    assert entries and entries[0].amount == 10


def test_roles_and_tokens(admin, as_role, exp, server):
    submitter, worker = as_role("submitter"), as_role("worker")
    assert submitter.whoami().role == 2
    submitter.submit_design(exp, source=variant(seed_source(admin, exp), "s"))
    assert code_of(lambda: submitter.set_budget(exp, "micro", 1)) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: worker.create_experiment("x")) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: submitter.register_worker("w")) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: worker.create_token("x", "admin")) == grpc.StatusCode.PERMISSION_DENIED
    with Coordinator(server.address, "", retries=1) as anon:
        assert code_of(lambda: anon.list_experiments()) == grpc.StatusCode.UNAUTHENTICATED
    with Coordinator(server.address, "tnope.secret", retries=1) as wrong:
        assert code_of(lambda: wrong.list_experiments()) == grpc.StatusCode.UNAUTHENTICATED
    short = as_role("submitter", ttl=1)
    short.list_experiments()
    time.sleep(1.2)
    assert code_of(lambda: short.list_experiments()) == grpc.StatusCode.UNAUTHENTICATED
    admin.revoke_token(submitter.whoami().id)
    assert code_of(lambda: submitter.list_experiments()) == grpc.StatusCode.UNAUTHENTICATED
    stored = {t.name: t for t in admin.list_tokens()}
    assert stored["submitter-0"].revoked and all("." not in t.id for t in stored.values())


def test_watch_streams_events(admin, exp):
    seen, ready = [], threading.Event()

    def consume():
        ready.set()
        for event in admin.watch(exp, kinds=["design_submitted", "result_reported"], timeout=5):
            seen.append(event)
            if len(seen) == 2:
                return

    t = threading.Thread(target=consume)
    t.start()
    ready.wait()
    time.sleep(0.3)
    design = admin.submit_design(exp, source=variant(seed_source(admin, exp), "w"))
    admin.report_result(design.id, "micro", {"piqa": 0.7})
    t.join(6)
    assert [e.kind for e in seen] == [design_pb2.EVENT_KIND_DESIGN_SUBMITTED,
                                      design_pb2.EVENT_KIND_RESULT_REPORTED]
    assert seen[0].design_id == design.id and seen[1].seq > seen[0].seq
    replay = list(admin.watch(exp, after_seq=0, timeout=1))
    assert replay[0].kind == design_pb2.EVENT_KIND_DESIGN_SUBMITTED  # seeds come first
    assert any(e.kind == design_pb2.EVENT_KIND_EXPERIMENT_CREATED for e in replay)


def test_health_and_reflection(server):
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "genesys.v1.SchedulerService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
            list_services="")]), timeout=5)
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"genesys.v1.EvolutionService", "genesys.v1.SchedulerService",
            "genesys.v1.BudgetService", "genesys.v1.AuthService",
            "grpc.reflection.v1.ServerReflection"} <= names


def test_reflection_v1_resolves_method_symbols(server):
    """What `grpcurl describe genesys.v1.SchedulerService.CompleteJob` asks (v1 first)."""
    with grpc.insecure_channel(server.address) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        symbols = ["genesys.v1.SchedulerService.CompleteJob", "genesys.v1.SchedulerService.Nope"]
        replies = list(info(iter([reflection_pb2.ServerReflectionRequest(
            file_containing_symbol=s) for s in symbols]), timeout=5))
    found = descriptor_pb2.FileDescriptorProto.FromString(
        replies[0].file_descriptor_response.file_descriptor_proto[0])
    assert found.name == "genesys/v1/scheduler.proto"
    assert replies[1].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


@pytest.mark.parametrize("method, raw", [
    ("/genesys.v1.EvolutionService/GetDesign", b"\xff\xff\xff"),
    ("/genesys.v1.EvolutionService/GetExperiment", b"\x0a\x02\xff\xfe"),  # bad UTF-8
    ("/genesys.v1.SchedulerService/LeaseJob", b"\x22\x08\x00"),            # truncated double
])
def test_undecodable_requests_are_invalid_argument(server, admin, method, raw):
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(method)
        with pytest.raises(grpc.RpcError) as err:
            call(raw, metadata=[("authorization", f"Bearer {server.token}")], timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("request: malformed")
    assert admin.list_experiments() == [], "the server keeps serving"


def test_bad_or_duplicate_seeds_create_nothing(admin):
    gpt = evolution_pb2.SeedDesign(name="a", source=_seed_file("gpt").read_text())
    twin = evolution_pb2.SeedDesign(name="b", source=gpt.source)
    broken = evolution_pb2.SeedDesign(name="c", source="class X:\n")
    for seeds, field in (([gpt, twin], "seeds[1]"), ([gpt, broken], "seeds[1].source")):
        req = evolution_pb2.CreateExperimentRequest(name="seeded", seeds=seeds)
        with pytest.raises(CoordinatorError) as err:
            admin._call(admin.evolution.CreateExperiment, req)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details.startswith(field), err.value.details
        assert admin.list_experiments() == []
    req = evolution_pb2.CreateExperimentRequest(name="seeded", seeds=[gpt])
    assert admin._call(admin.evolution.CreateExperiment, req).seed_design_ids


def _seed_file(name: str):
    from genesys.server.seeds import default_seeds_dir

    return default_seeds_dir() / f"{name}.py"


def test_select_parents_is_deterministic_under_a_seed(admin, exp):
    for i, d in enumerate(admin.list_designs(exp)[:3]):
        admin.report_result(d.id, "micro", {"piqa": 0.55 + 0.05 * i})
    picks = [[p.id for p in admin.select_parents(exp, "crossover", seed=11)] for _ in range(3)]
    assert picks[0] == picks[1] == picks[2] and len(set(picks[0])) == 2
    assert len(admin.select_parents(exp, "scratch")) == 0
    assert code_of(lambda: admin.select_parents(exp, count=99)) == grpc.StatusCode.INVALID_ARGUMENT

"""Hostile clients: random and mutated messages to every RPC of every service. The server
stays up, never answers INTERNAL (or UNKNOWN), and the invariants hold afterwards."""

from __future__ import annotations

import grpc
import pytest
from genesys.client import Coordinator
from genesys.server.app import SERVICE_DESCRIPTORS
from genesys.server.testing import local_coordinator
from genesys.v1 import experiment_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .invariants import check_invariants

METHODS = [(service.full_name, method) for service in SERVICE_DESCRIPTORS
           for method in service.methods]
BAD_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
INT_EDGES = [0, 1, 2, 7, -1, 2**31 - 1, -(2**31), 2**62, 10**12]
FLOAT_EDGES = [0.0, 0.5, 1.0, 30.0, -1.0, 1e308, float("nan"), float("inf"), -float("inf")]
INT_TYPES = {FieldDescriptor.TYPE_INT32: 31, FieldDescriptor.TYPE_SINT32: 31,
             FieldDescriptor.TYPE_SFIXED32: 31, FieldDescriptor.TYPE_INT64: 63,
             FieldDescriptor.TYPE_SINT64: 63, FieldDescriptor.TYPE_SFIXED64: 63}
SET_FIELD = (True, True, True, False)  # each field is set with probability 3/4
UINT_TYPES = {FieldDescriptor.TYPE_UINT32: 32, FieldDescriptor.TYPE_FIXED32: 32,
              FieldDescriptor.TYPE_UINT64: 64, FieldDescriptor.TYPE_FIXED64: 64}


class World:
    """A coordinator with an experiment, workers and jobs in every state, and the ids the
    fuzzer aims at."""

    def __init__(self, tmp_path):
        self._server = local_coordinator(tmp_path, **{"scheduler.max_wait_seconds": 0.2,
                                                     "scheduler.recheck_seconds": 0.1})
        self.server = self._server.__enter__()
        self.admin = Coordinator(self.server.address, self.server.token, retries=1)
        self.admin.create_experiment("fz", ladder="micro:6,tiny:2",
                                     seeds=("gpt", "retnet", "ttt"))
        worker = Coordinator(self.server.address, self.admin.create_token("w", "worker").token,
                             retries=1)
        worker.register_worker("w0", roles=["verify", "design"])
        jobs = [worker.lease_job(timeout=0, kinds=["verify"]) for _ in range(3)]
        worker.complete(jobs[0], metrics={"piqa": 0.6})
        worker.fail(jobs[1], "boom", retryable=False)
        design_job = worker.lease_job(timeout=0, kinds=["design"])
        self.worker = worker
        self.ids = ["fz", "micro", "tiny", "", "gpt", "mutation", "w0", worker.worker_id,
                    *(j.id for j in (*jobs, design_job)),
                    *(d.id for d in self.admin.list_designs("fz"))]
        self.fencing = [j.fencing_token for j in (*jobs, design_job)]
        self.channel = grpc.insecure_channel(self.server.address)
        self.metadata = (("authorization", f"Bearer {self.server.token}"),)

    def call(self, service: str, method, payload: bytes) -> grpc.StatusCode:
        rpc = f"/{service}/{method.name}"
        try:
            if method.server_streaming:
                stream = self.channel.unary_stream(rpc)(payload, metadata=self.metadata,
                                                         timeout=0.5)
                for _ in stream:
                    pass
            else:
                self.channel.unary_unary(rpc)(payload, metadata=self.metadata, timeout=10)
        except grpc.RpcError as e:
            return e.code()
        return grpc.StatusCode.OK

    def close(self) -> None:
        self.channel.close()
        self.worker.close()
        self.admin.close()
        self._server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("fuzz"))
    yield w
    w.close()


def strings(world: World) -> st.SearchStrategy[str]:
    known = st.sampled_from(world.ids)
    return st.one_of(known, known, known, st.text(max_size=12),
                     st.integers(200, 70_000).map(lambda n: "x" * n),
                     st.sampled_from(["\x00", "../../etc", "é" * 300, "{}", "[1]", "null"]))


def scalar(field: FieldDescriptor, world: World) -> st.SearchStrategy:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return strings(world)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=16)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        defined = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(defined), st.sampled_from([99, -1, 2**31 - 1]))
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(-10, 1000))
    if kind in INT_TYPES:
        bits = INT_TYPES[kind]
        edges = [v for v in INT_EDGES if -(2**bits) <= v < 2**bits]
        return st.one_of(st.sampled_from(edges), st.integers(-5, 100))
    bits = UINT_TYPES[kind]
    return st.one_of(st.sampled_from([0, 1, 2, 2**bits - 1, *world.fencing]),
                     st.integers(0, 100))


def message(descriptor: Descriptor, world: World, depth: int = 0) -> st.SearchStrategy:
    """A random message of this type: each field set or not, nested up to depth 3."""
    cls = message_factory.GetMessageClass(descriptor)
    fields = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            if field.message_type.GetOptions().map_entry:
                key = scalar(field.message_type.fields_by_name["key"], world)
                value_field = field.message_type.fields_by_name["value"]
                value = (message(value_field.message_type, world, depth + 1)
                         if value_field.type == FieldDescriptor.TYPE_MESSAGE
                         else scalar(value_field, world))
                fields[field.name] = st.dictionaries(key, value, max_size=3)
                continue
            value = message(field.message_type, world, depth + 1)
        else:
            value = scalar(field, world)
        fields[field.name] = st.lists(value, max_size=3) if field.is_repeated else value

    @st.composite
    def build(draw):
        out = cls()
        for name, strategy in fields.items():
            if not draw(st.sampled_from(SET_FIELD)):
                continue
            value = draw(strategy)
            target = getattr(out, name) if isinstance(value, (list, dict)) else None
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, Message):
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, Message):
                        target.add().CopyFrom(v)
                    else:
                        target.append(v)
            elif isinstance(value, Message):
                getattr(out, name).CopyFrom(value)
            else:
                setattr(out, name, value)
        return out

    return build()


def mutate(data: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    """Flip bytes and cut the tail: mostly undecodable or oddly decoded messages."""
    buf = bytearray(data)
    for at, value in flips:
        if buf:
            buf[at % len(buf)] = value
    return bytes(buf[: max(0, len(buf) - cut)])


@st.composite
def payloads(draw, method, world: World) -> bytes:
    payload = draw(message(method.input_type, world)).SerializeToString()
    if payload and draw(st.sampled_from((False, False, False, True))):
        flips = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4)
        payload = mutate(payload, draw(flips), draw(st.integers(0, 3)))
    return payload


@pytest.mark.parametrize("service, method", METHODS, ids=[m.name for _, m in METHODS])
def test_fuzz_rpc_never_answers_internal(world, service, method):
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(payloads(method, world))
    def one(payload):
        code = world.call(service, method, payload)
        assert code not in BAD_CODES, f"{method.name} answered {code.name} to {payload[:300]!r}"

    one()


def test_after_fuzzing_server_serves_and_invariants_hold(world):
    health = health_pb2_grpc.HealthStub(world.channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == \
        health_pb2.HealthCheckResponse.SERVING
    check_invariants(world.admin, "fz", by_hand=True)
    world.admin.list_tokens(), world.admin.list_workers(include_dead=True)
    for exp in world.admin.list_experiments():
        assert exp.state in experiment_pb2.ExperimentState.values(), exp.state
        world.admin.leaderboard(exp.name), world.admin.list_designs(exp.name)

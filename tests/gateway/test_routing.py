"""Gateway behaviour against fake OpenAI servers: routing, failover, retries, streaming."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from genesys.client.llm import LLM, LLMError
from genesys.v1 import llm_gateway_pb2 as pb

from .conftest import BASE, free_port, models_toml


def states(llm: LLM, model: str) -> dict[str, int]:
    info = next(m for m in llm.models() if m.name == model)
    return {r.url: r.state for r in info.replicas}


def test_least_outstanding_spreads_load_over_healthy_replicas(fake_server, gateway):
    a, b = fake_server(name="a", delay=0.2), fake_server(name="b", delay=0.2)
    gw = gateway(BASE + models_toml("fake", [a.url, b.url]))
    with LLM(gw.address) as llm, ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda i: llm.chat(f"hello {i}").text, range(16)))
    assert all(t.startswith(("[a] echo: hello", "[b] echo: hello")) for t in texts)
    assert a.requests() == b.requests() == 8  # 8 concurrent slots, always the less loaded one


def test_failover_dead_endpoint_and_replica_killed_mid_run(fake_server, gateway):
    healthy = fake_server(name="healthy", delay=0.05)
    doomed = fake_server(name="doomed", delay=0.05)
    dead_url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    gw = gateway(BASE + models_toml("fake", [healthy.url, dead_url, doomed.url]))
    results: list[str] = []
    with LLM(gw.address) as llm:
        assert states(llm, "fake")[dead_url] == pb.REPLICA_STATE_UNHEALTHY

        def worker(i: int) -> None:
            for j in range(10):
                results.append(llm.chat(f"q{i}-{j}", timeout=30).text)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        while doomed.requests() < 3:
            time.sleep(0.01)
        doomed.kill()
        for t in threads:
            t.join()
        assert len(results) == 40  # every request succeeded
        assert any(r.startswith("[doomed]") for r in results)
        final = states(llm, "fake")
    assert final[dead_url] == pb.REPLICA_STATE_UNHEALTHY
    assert final[doomed.url] == pb.REPLICA_STATE_UNHEALTHY
    assert final[healthy.url] == pb.REPLICA_STATE_HEALTHY


def test_5xx_is_retried_on_another_replica_but_4xx_never(fake_server, gateway):
    broken = fake_server(name="broken", fail_status=503)
    good = fake_server(name="good", max_model_len=50)
    gw = gateway(BASE + models_toml("fake", [broken.url, good.url], max_context=1000, default_max_tokens=10))
    with LLM(gw.address) as llm:
        for i in range(6):
            assert llm.chat(f"hi {i}").text == f"[good] echo: hi {i}"
        assert broken.requests() >= 1  # it was tried, failed with 503, and the request moved on
        before = good.requests() + broken.requests()
        with pytest.raises(LLMError) as err:
            llm.chat("word " * 40, max_tokens=20)  # the server's own context check says 400
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "maximum context length is 50" in err.value.message
        assert good.requests() + broken.requests() - before <= 1 + 1  # at most one 503 + the 400
        assert states(llm, "fake")[broken.url] == pb.REPLICA_STATE_HEALTHY  # 5xx != dead


def test_streaming_relays_deltas_and_usage(fake_server, gateway):
    a = fake_server(name="a")
    gw = gateway(BASE + models_toml("fake", [a.url]))
    with LLM(gw.address, caller="streamer") as llm:
        parts = list(llm.stream("tell me a story"))
        assert len(parts) > 1
        assert "".join(parts) == "[a] echo: tell me a story"
        [record] = llm.usage(caller="streamer")
    assert (record.requests, record.prompt_tokens, record.completion_tokens) == (1, 4, 6)


def test_deadline_exceeded(fake_server, gateway):
    slow = fake_server(name="slow", delay=3)
    gw = gateway(BASE + models_toml("fake", [slow.url]))
    with LLM(gw.address) as llm:
        started = time.monotonic()
        with pytest.raises(LLMError) as err:
            llm.chat("hi", timeout=0.5)
        assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2.5


def test_queue_full_is_resource_exhausted(fake_server, gateway):
    slow = fake_server(name="slow", delay=1.0)
    gw = gateway(BASE + models_toml("fake", [slow.url], max_concurrency=1, queue_size=1))
    with LLM(gw.address) as llm, ThreadPoolExecutor(4) as pool:
        def ask(i: int):
            try:
                return llm.chat(f"q{i}").text
            except LLMError as exc:
                return exc
        outcomes = list(pool.map(ask, range(4)))
        full = [o for o in outcomes if isinstance(o, LLMError)]
        assert full and all(o.code == grpc.StatusCode.RESOURCE_EXHAUSTED for o in full)
        assert "queue_size 1" in full[0].message
        assert sum(isinstance(o, str) for o in outcomes) == 2  # one running + one queued
        assert llm.chat("after").text == "[slow] echo: after"  # still serving

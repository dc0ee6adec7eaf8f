"""Bad requests get clear status codes and the gateway keeps serving; accounting; auth."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from genesys.client.llm import LLM, LLMError
from genesys.llm_gateway.auth import hash_token
from genesys.v1 import llm_gateway_pb2 as pb
from genesys.v1 import llm_gateway_pb2_grpc as pb_grpc

from .conftest import BASE, free_port, models_toml

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture
def two_models(fake_server, gateway):
    a = fake_server(name="a", served_name="small")
    b = fake_server(name="b", served_name="big")
    metrics = f"127.0.0.1:{free_port()}"
    config = (BASE + f'metrics_listen = "{metrics}"\n[roles]\nproposer = "small"\ncoder = "big"\n'
              + models_toml("small", [a.url], max_context=100, default_max_tokens=8)
              + models_toml("big", [b.url]))
    return gateway(config), metrics


def expect(code: grpc.StatusCode, fn, *args, **kwargs) -> str:
    with pytest.raises(LLMError) as err:
        fn(*args, **kwargs)
    assert err.value.code == code, err.value
    return err.value.message


def test_bad_requests_get_clear_errors_and_gateway_keeps_serving(two_models):
    gw, _ = two_models
    with LLM(gw.address) as llm:
        msg = expect(grpc.StatusCode.NOT_FOUND, llm.chat, "hi", model="gpt-17")
        assert "unknown model 'gpt-17'" in msg and "big, small" in msg
        assert "role 'reviewer'" in expect(grpc.StatusCode.NOT_FOUND, llm.chat, "hi", role="reviewer")
        assert "messages" in expect(grpc.StatusCode.INVALID_ARGUMENT, llm.chat, [], model="small")
        assert "several models" in expect(grpc.StatusCode.INVALID_ARGUMENT, llm.chat, "hi")
        assert "not a valid JSON Schema" in expect(
            grpc.StatusCode.INVALID_ARGUMENT, llm.chat, "hi", model="small", json_schema={"type": 5})
        assert "does not fit" in expect(
            grpc.StatusCode.INVALID_ARGUMENT, llm.chat, "hi", model="small", max_tokens=5000)
        assert "maximum context length" in expect(  # the server's own 400, passed on
            grpc.StatusCode.INVALID_ARGUMENT, llm.chat, "word " * 600, model="big", max_tokens=10)
        assert "temperature" in expect(
            grpc.StatusCode.INVALID_ARGUMENT, llm.chat, "hi", model="small", temperature=7.0)
        assert "stream" not in expect(grpc.StatusCode.NOT_FOUND, lambda: list(llm.stream("hi", model="x")))
        # still serving, by name and by role
        assert llm.chat("hi", model="small").text == "[a] echo: hi"
        assert llm.chat("hi", role="coder").text == "[b] echo: hi"
        assert llm.chat_json("hi", SCHEMA, role="proposer") == {"answer": "a"}


def test_schema_text_that_is_not_json_is_invalid_argument(two_models):
    gw, _ = two_models
    with grpc.insecure_channel(gw.address) as channel:
        stub = pb_grpc.LLMGatewayStub(channel)
        inp = pb.ChatInput(model="small", json_schema="{not json",
                           messages=[pb.ChatMessage(author=pb.ChatMessage.AUTHOR_USER, content="x")])
        with pytest.raises(grpc.RpcError) as err:
            stub.Chat(pb.ChatRequest(input=inp), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not valid JSON" in err.value.details()


def test_token_accounting_over_rpc_and_prometheus(two_models):
    gw, metrics = two_models
    expected = {"prompt": 0, "completion": 0}
    with LLM(gw.address, caller="alice", experiment="exp1") as llm:
        for i in range(3):
            r = llm.chat(f"count {i} please", model="small")
            expected["prompt"] += r.prompt_tokens
            expected["completion"] += r.completion_tokens
        with pytest.raises(LLMError):
            llm.chat("x", model="small", max_tokens=5000)
    with LLM(gw.address, caller="bob", experiment="exp2") as llm:
        llm.chat("other", model="big")
        rows = {(r.caller, r.experiment, r.model): r for r in llm.usage()}
        alice = rows[("alice", "exp1", "small")]
        assert (alice.requests, alice.errors) == (4, 1)
        assert (alice.prompt_tokens, alice.completion_tokens) == (expected["prompt"], expected["completion"])
        assert expected["prompt"] == 9
        assert rows[("bob", "exp2", "big")].requests == 1
        assert [r.caller for r in llm.usage(experiment="exp2")] == ["bob"]
    text = httpx.get(f"http://{metrics}/metrics", timeout=5).text
    assert 'genesys_llm_prompt_tokens_total{caller="alice",experiment="exp1",model="small"} 9.0' in text
    assert 'genesys_llm_errors_total{caller="alice",experiment="exp1",model="small"} 1.0' in text
    assert "genesys_llm_replica_healthy" in text


def test_bearer_tokens_worker_and_admin(fake_server, gateway):
    a = fake_server(name="a")
    config = BASE + f"""
[auth]
enabled = true
[[auth.tokens]]
name = "worker-1"
role = "worker"
sha256 = "{hash_token('w-secret')}"
[[auth.tokens]]
name = "root"
role = "admin"
sha256 = "{hash_token('a-secret')}"
""" + models_toml("fake", [a.url])
    gw = gateway(config)
    with LLM(gw.address, token="") as anonymous:
        assert "bearer" in expect(grpc.StatusCode.UNAUTHENTICATED, anonymous.chat, "hi")
    with LLM(gw.address, token="wrong") as wrong:
        expect(grpc.StatusCode.UNAUTHENTICATED, wrong.models)
    with LLM(gw.address, token="w-secret", caller="spoofed") as worker:
        assert worker.chat("hi").text == "[a] echo: hi"
        assert [r.caller for r in worker.usage()] == ["worker-1"]  # the token names the caller
        expect(grpc.StatusCode.PERMISSION_DENIED, worker.usage, caller="root")
    with LLM(gw.address, token="a-secret") as admin:
        admin.chat("hello")
        assert sorted(r.caller for r in admin.usage()) == ["root", "worker-1"]


def test_cli_models_and_chat(two_models, tmp_path):
    from click.testing import CliRunner
    from genesys.cli import cli

    gw, _ = two_models
    runner = CliRunner()
    result = runner.invoke(cli, ["llm", "models", "--address", gw.address, "--json"])
    assert result.exit_code == 0, result.output
    assert {m["name"] for m in json.loads(result.output)} == {"small", "big"}
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    result = runner.invoke(cli, ["llm", "chat", "hi", "--model", "small", "--json-schema", str(schema),
                                 "--address", gw.address])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"answer": "a"}
    result = runner.invoke(cli, ["llm", "chat", "hi", "--model", "nope", "--address", gw.address])
    assert result.exit_code == 1 and "unknown model 'nope'" in result.output

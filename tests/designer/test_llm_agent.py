"""An agent with the design role runs the experiment's LLM designer on a real DESIGN job."""

from __future__ import annotations

import json
import time

from agent.procs import AgentProcess
from genesys.v1 import experiment_pb2


def test_an_agent_runs_the_experiments_llm_designer_and_submits_its_trace(
        coordinator, scripted, tmp_path, monkeypatch):
    server = scripted({"proposer": [
        {"json": {"operation": "set n_heads from 4 to 2", "rationale": "more, smaller heads"}}]})
    config = experiment_pb2.ExperimentConfig(extra_json=json.dumps({"designer": "llm-edit"}))
    config.design_mix.max_designs, config.design_mix.max_open_design_jobs = 2, 1
    config.llm_roles.add(role="proposer", model="proposer", max_tokens=200)
    with coordinator.client() as admin:
        admin.create_experiment("agentic", config, ladder="micro:1", seeds=("gpt",))
        [gpt] = admin.list_designs("agentic")
        token = admin.create_token("agent", "worker").token
        monkeypatch.setenv("GENESYS_LLM_ADDRESS", server.gateway)
        agent = AgentProcess(coordinator.address, token, tmp_path / "agent", "--roles", "design").start()
        try:
            deadline = time.monotonic() + 240
            while not (made := [d for d in admin.list_designs("agentic") if not d.seed]):
                assert agent.proc.poll() is None, agent.output()[-3000:]
                assert time.monotonic() < deadline, agent.output()[-3000:]
                time.sleep(0.5)
        finally:
            agent.terminate()
        design = admin.get_design(made[0].id)

    assert design.parents == [gpt.id]
    trace = design.trace
    assert trace.designer == "llm-edit" and trace.agent.startswith("genesys.designer.llm@")
    assert [p.model for p in trace.prompts] == ["proposer"] and trace.prompt_tokens > 0
    assert json.loads(trace.check_report_json)["valid"]
    [asked] = server.requests("proposer")
    assert asked["response_format"]["json_schema"]  # the binding's model, constrained output

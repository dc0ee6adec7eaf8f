"""A DESIGN job killed mid-design resumes from its journal without repeating an LLM call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .llm_scripts import PROPOSAL, RELU2_MLP, code, gpt_parent, review


def design_child(server, payload: dict, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "GENESYS_LLM_ADDRESS": server.gateway}
    proc = subprocess.Popen([sys.executable, "-m", "genesys.gpu_agent.design_child"], cwd=cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            start_new_session=True, text=True)
    proc.stdin.write(json.dumps(payload))
    proc.stdin.close()
    return proc


def journal_kinds(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["kind"] for line in path.read_text().splitlines() if line.endswith("}")]


def test_a_killed_design_job_resumes_without_repeating_a_call(scripted, tmp_path):
    server = scripted({"proposer": [{"json": PROPOSAL}], "reviewer": [review(5)],
                       "coder": [code(RELU2_MLP)], "observer": [review(4)]})
    journal = tmp_path / "design.journal"
    payload = {"designer": "llm", "operation": "mutation", "experiment": "exp1", "seed": 5,
               "job_id": "job-1", "parents": [gpt_parent()], "checkpoint": str(journal)}

    first = design_child(server, payload, tmp_path)
    deadline = time.monotonic() + 60
    while journal_kinds(journal).count("llm") < 3:  # proposal, review, unit written
        assert first.poll() is None and time.monotonic() < deadline, "the child ended early"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # during the unit's check
    first.wait()
    assert "check" not in journal_kinds(journal)

    second = design_child(server, payload, tmp_path)
    out = second.stdout.read()
    assert second.wait(timeout=120) == 0
    result = next(json.loads(line)["result"] for line in out.splitlines() if '"result"' in line)

    assert result["ok"], result.get("error")
    asked = [(r["model"], r["index"]) for r in server.requests()]
    assert sorted(asked) == [("coder", 0), ("observer", 0), ("proposer", 0), ("reviewer", 0)]
    trace = result["trace"]
    assert json.loads(trace["metadata_json"])["replayed"] == 3
    assert any("resumed" in n for n in trace["notes"])
    assert [p["stage"] for p in trace["prompts"]] == ["propose", "review", "implement", "observe"]
    assert int(trace["completion_tokens"]) > 0  # replayed calls still count in the totals

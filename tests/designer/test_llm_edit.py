"""Edit mode through the real gateway: the model picks a valid operation from an enum."""

from __future__ import annotations

import json

from genesys.client.llm import LLM
from genesys.design import load_design
from genesys.designer.job import seed_sources
from genesys.designer.llm import design_job


def _payload(**extra) -> dict:
    return {"designer": "llm-edit", "operation": "mutation", "experiment": "exp1", "seed": 7,
            "parents": [{"id": "d-gpt", "name": "gpt", "source": seed_sources()["gpt"],
                         "results": {"micro": {"val_loss": 5.1}}}], **extra}


def test_edit_mode_applies_the_chosen_operation_after_a_repaired_answer(scripted):
    server = scripted({"proposer": [
        {"text": "I would like to add more heads!"},  # not JSON: the designer asks again
        {"json": {"operation": "set n_heads from 4 to 2", "rationale": "smaller heads, more of them"}},
    ]})
    events = []
    with LLM(server.gateway, caller="t", experiment="exp1") as llm:
        result = design_job(_payload(), events.append, llm=llm)

    assert result["ok"], result.get("error")
    child = load_design(result["source"])
    assert child.config["n_heads"] == 2
    assert child.digest == result["digest"] and result["parents"] == ["d-gpt"]
    assert result["label"] == "gpt:n_heads=2"
    trace = result["trace"]
    assert trace["designer"] == "llm-edit" and trace["abandoned_reason"] == ""
    assert [p["stage"] for p in trace["prompts"]] == ["edit", "edit:repair"]
    assert "set n_heads from 4 to 2" in trace["proposal"]
    assert json.loads(trace["check_report_json"])["valid"] is True

    sent = server.requests("proposer")
    assert len(sent) == 2
    enum = sent[0]["response_format"]["json_schema"]["schema"]["properties"]["operation"]["enum"]
    assert "set n_heads from 4 to 2" in enum and len(enum) <= 40
    assert "5.1" in sent[0]["messages"][-1]["content"]  # the parent's metrics were shown
    assert "could not be used" in sent[1]["messages"][-1]["content"]
    prompt = sum(len(m["content"].split()) for r in sent for m in r["messages"])
    assert int(trace["prompt_tokens"]) == prompt
    assert int(trace["completion_tokens"]) == sum(
        len((r["answer"].get("text") or json.dumps(r["answer"]["json"])).split()) for r in sent)
    assert any(e["stage"] == "check" for e in events)

"""The full LLM pipeline (proposal, review, unit-by-unit implementation with the real checker,
observer) through the real gateway, answered by the scripted model server."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from genesys.client.llm import LLM
from genesys.design import load_design
from genesys.designer.llm import design_job
from genesys.designer.llm.proposal import similarity

from .llm_scripts import (
    ACT,
    LEAKY_MLP,
    MLP_BLOCK,
    OTHER_PROPOSAL,
    PROPOSAL,
    RELU2_MLP,
    SPLIT_MLP,
    UP_PROJ,
    code,
    gpt_parent,
    review,
    words,
)


def run(server, **payload):
    base = {"designer": "llm", "operation": "mutation", "experiment": "exp1", "seed": 3,
            "parents": [gpt_parent()], "llm": {"retry_wait_s": 0.05}}
    events = []
    experiment = payload.get("experiment", "exp1")
    with LLM(server.gateway, caller="t", experiment=experiment) as llm:
        result = design_job({**base, **payload}, events.append, llm=llm)
    return result, events


def token_totals(server) -> tuple[int, int]:
    sent = [r for r in server.requests() if r["answer"] and "json" in r["answer"] or
            r["answer"] and "text" in r["answer"]]
    prompt = sum(len(m["content"].split()) for r in sent for m in r["messages"])
    return prompt, sum(words(r["answer"]) for r in sent)


def test_happy_path_submits_the_rewritten_unit_and_protects_the_rest(scripted):
    server = scripted({
        "proposer": [{"json": PROPOSAL}],
        "reviewer": [review(5)],
        "coder": [code(RELU2_MLP, fenced=True)],  # parsed from the fenced block
        "observer": [{"status": 503, "message": "overloaded"}, review(4)],  # retried
    })
    result, events = run(server)

    assert result["ok"], result.get("error")
    child, parent = load_design(result["source"]), load_design(gpt_parent()["source"])
    assert "F.relu(self.fc1(X)) ** 2" in child.units["GatedMLP"].code
    for name in ("GPT2", "MHA", "RotaryEmbedding", "RMSNorm"):
        assert child.units[name].canonical_code == parent.units[name].canonical_code
    assert result["label"] == "gpt+GatedMLP"
    trace = result["trace"]
    assert [(p["role"], p["stage"]) for p in trace["prompts"]] == [
        ("proposer", "propose"), ("reviewer", "review"), ("coder", "implement"),
        ("observer", "observe")]
    assert trace["prompts"][2]["unit"] == "GatedMLP"
    assert trace["review_rating"] == 5 and "Squared-ReLU" in trace["proposal"]
    assert any("literature search skipped" in n for n in trace["notes"])
    assert any("gateway error, retrying" in n for n in trace["notes"])
    assert json.loads(trace["check_report_json"])["valid"]
    assert (int(trace["prompt_tokens"]), int(trace["completion_tokens"])) == token_totals(server)
    assert [e["stage"] for e in events if e["stage"] in ("proposal", "done")] == ["proposal", "done"]


def test_refused_proposal_retried_then_a_non_causal_unit_fixed_from_the_checker_message(scripted):
    server = scripted({
        "proposer": [{"json": OTHER_PROPOSAL}, {"json": PROPOSAL}],
        "reviewer": [review(2, "Not novel: a wider gate is an old idea."), review(4)],
        "coder": [code(LEAKY_MLP), code(RELU2_MLP)],
        "observer": [review(4)],
    })
    result, _ = run(server)

    assert result["ok"], result.get("error")
    second = server.requests("proposer")[1]["messages"][-1]["content"]
    assert "Not novel" in second and "Wider gate" in second  # saw its last try and the review
    fix_prompt = server.requests("coder")[1]["messages"][-1]["content"]
    assert "causality: not causal" in fix_prompt and "X.mean(dim=1" in fix_prompt  # + its last code
    trace = result["trace"]
    assert trace["attempts"] == 2 and trace["review_rating"] == 4
    assert any("refused (rating 2)" in n for n in trace["notes"])
    assert "X.mean" not in load_design(result["source"]).units["GatedMLP"].code


def test_units_failing_every_attempt_roll_back_then_the_design_is_abandoned(scripted):
    wrong_name = RELU2_MLP.replace("class GatedMLP", "class MyMLP")
    server = scripted({
        "proposer": [{"json": PROPOSAL}],
        "reviewer": [review(5)],
        "coder": [code(wrong_name), {"json": {"analysis": "x", "code": "def broken(:"}}] * 2,
    })
    result, events = run(server, llm={"unit_attempts": 2, "max_failed_units": 2})

    assert not result["ok"] and "2 units failed" in result["error"]
    assert result["failure_kind"] == "design"
    trace = result["trace"]
    assert trace["abandoned_reason"] == result["error"]
    assert sum("last good tree is restored" in n for n in trace["notes"]) == 2
    coder = server.requests("coder")
    assert len(coder) == 4
    assert "exactly one class named GatedMLP" in coder[1]["messages"][-1]["content"]
    assert "feedback" not in coder[2]["messages"][-1]["content"].lower() or \
        "did not pass" not in coder[2]["messages"][-1]["content"]  # a fresh round after rollback
    assert not any(e["stage"] == "check" for e in events), "format errors never reach the sandbox"


def test_direct_prompting_writes_the_whole_file(scripted):
    source = gpt_parent()["source"]
    new = source.replace(load_design(source).units["GatedMLP"].code, RELU2_MLP.rstrip())
    server = scripted({"coder": [{"json": {"analysis": "whole file", "code": "CONFIG = 1"}},
                                 {"json": {"analysis": "relu2", "code": new}}]})
    result, _ = run(server, designer="llm-direct")

    assert result["ok"], result.get("error")
    assert "F.relu" in load_design(result["source"]).units["GatedMLP"].code
    assert "format check failed" in server.requests("coder")[1]["messages"][-1]["content"]
    assert result["trace"]["designer"] == "llm-direct" and result["trace"]["attempts"] == 2


@pytest.mark.parametrize("budget", ["max_tokens_per_design", "max_tokens_per_experiment"])
def test_token_budgets_stop_the_designer_with_a_reason(scripted, budget):
    server = scripted({"proposer": [{"json": OTHER_PROPOSAL}] * 3, "reviewer": [review(1)] * 3})
    result, _ = run(server, llm={budget: 50}, experiment=f"budget-{budget[11:]}")  # its own count

    assert not result["ok"] and "token budget" in result["error"]
    assert result["failure_kind"] == "budget"
    assert len(server.requests()) == 1  # the first call spent the budget; nothing after it
    assert int(result["trace"]["prompt_tokens"]) > 0


class FakeKnowledge:
    """The genesys.client.knowledge.Knowledge interface over a list in memory."""

    def __init__(self, past: list[str]):
        self.past, self.queries, self.added = past, [], []

    def search(self, query, k=5, filter=None):
        self.queries.append(query)
        return [SimpleNamespace(doc_id="p1", title="Primer", section="3", page=1, score=1.0,
                                source="primer.pdf", text="Squared ReLU activations help.")]

    def similar_proposals(self, experiment, text, k=3):
        return [SimpleNamespace(proposal_id=f"old{i}", text=t, rating=2.0, review="meh",
                                score=similarity(text, t)) for i, t in enumerate(self.past)][:k]

    def add_proposal(self, experiment, proposal_id, text, rating, review, metadata=None):
        self.added.append((experiment, proposal_id, rating))


def test_literature_rounds_and_past_proposals_shape_the_proposal_loop(scripted):
    knowledge = FakeKnowledge(past=[PROPOSAL["proposal"]])
    server = scripted({
        "proposer": [{"json": {"queries": ["squared relu language model"]}},
                     {"json": PROPOSAL}, {"json": OTHER_PROPOSAL}],
        "reviewer": [review(3, "Plausible but thin.")],
    })
    with LLM(server.gateway, caller="t", experiment="exp1") as llm:
        result = design_job({"designer": "llm", "operation": "mutation", "experiment": "exp1",
                             "job_id": "j1", "parents": [gpt_parent()],
                             "llm": {"proposal_attempts": 2}}, llm=llm, knowledge=knowledge)

    assert not result["ok"] and "review threshold" in result["error"]
    assert knowledge.queries == ["squared relu language model"]
    proposer = server.requests("proposer")
    assert "Squared ReLU activations help." in proposer[1]["messages"][-1]["content"]
    assert "too similar to past proposal" in proposer[2]["messages"][-1]["content"]
    assert len(server.requests("reviewer")) == 1, "the repeated proposal spent no review"
    assert knowledge.added == [("exp1", "j1-2", 3.0)]
    assert any("sent back unreviewed" in n for n in result["trace"]["notes"])


def test_declared_children_are_placeholders_until_the_planner_has_them_written(scripted):
    server = scripted({
        "proposer": [{"json": {**PROPOSAL, "title": "Split MLP"}}],
        "reviewer": [review(4)],
        "coder": [code(SPLIT_MLP), code(ACT), code(ACT), code(UP_PROJ)],
        "planner": [{"json": {"unit": "Act", "reason": "the activation is simplest"}}],
        "observer": [review(4), review(2, "GELU is not what the proposal asks for."),
                     review(3), review(4)],
    })
    result, _ = run(server)

    assert result["ok"], result.get("error")
    child = load_design(result["source"])
    assert child.children_of("GatedMLP") == ["UpProj", "Act"]
    assert "F.gelu" in child.units["Act"].code and "self.proj" in child.units["UpProj"].code
    planned = server.requests("planner")[0]
    assert planned["response_format"]["json_schema"]["schema"]["properties"]["unit"]["enum"] == \
        ["UpProj", "Act"]
    assert "GELU is not what" in server.requests("coder")[2]["messages"][-1]["content"]
    trace = result["trace"]
    assert [p["unit"] for p in trace["prompts"] if p["role"] == "coder"] == \
        ["GatedMLP", "Act", "Act", "UpProj"]
    assert any("placeholders for UpProj, Act" in n for n in trace["notes"])
    assert json.loads(trace["metadata_json"])["checks"] == 3  # the repeated Act reused its verdict


def test_a_design_from_scratch_starts_from_a_placeholder_root(scripted):
    server = scripted({
        "proposer": [{"json": {"title": "MLP block", "unit": "MLPBlock",
                               "proposal": "A block of one residual squared-ReLU MLP."}}],
        "reviewer": [review(4)], "coder": [code(MLP_BLOCK)], "observer": [review(3)],
    })
    result, _ = run(server, operation="scratch", parents=[])

    assert result["ok"], result.get("error")
    design = load_design(result["source"])
    assert design.root == "MLPBlock" and list(design.units) == ["MLPBlock"]
    assert result["parents"] == [] and result["operation"] == "scratch"
    scratch_prompt = server.requests("proposer")[0]["messages"][-1]["content"]
    assert "from scratch" in scratch_prompt
    schema = server.requests("proposer")[0]["response_format"]["json_schema"]["schema"]
    assert "pattern" in schema["properties"]["unit"]  # a new class name, not a parent's unit

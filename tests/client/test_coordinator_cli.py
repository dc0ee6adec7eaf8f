"""The coordinator CLI commands against a real server (`--json` output parsed back)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from genesys.cli import cli
from genesys.lmade.seeds import source as seed_source


@pytest.fixture
def run(server):
    env = {"GENESYS_COORDINATOR": server.address, "GENESYS_TOKEN": server.token}
    runner = CliRunner()

    def invoke(*args, code=0, raw=False):
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        parse = "--json" in args and code == 0 and not raw
        return json.loads(result.output) if parse else result.output

    return invoke


def test_experiment_design_budget_flow(run, tmp_path):
    created = run("experiment", "create", "cli", "--ladder", "micro:3,tiny:1", "--seed", "gpt",
                  "--json")
    assert created["name"] == "cli" and created["stats"]["designs"] == 1
    assert [e["name"] for e in run("experiment", "list", "--json")] == ["cli"]
    assert run("experiment", "show", "cli", "--json")["config_version"] == 1
    paused = run("experiment", "update", "cli", "--state", "paused", "--json")
    assert paused["state"] == "EXPERIMENT_STATE_PAUSED"
    updated = run("experiment", "update", "cli", "--state", "active", "--config-json",
                  '{"ladder": {"rungs": [{"name": "micro", "budget": 3}, {"name": "tiny"}]}}',
                  "--json")
    assert updated["config_version"] == 2 and updated["state"] == "EXPERIMENT_STATE_ACTIVE"
    run("experiment", "update", "cli", code=2)
    seed = run("design", "list", "cli", "--json")[0]
    path = tmp_path / "mine.py"
    path.write_text(seed_source("gpt").replace("CONFIG = {", "CONFIG = {'cli': 1, ", 1))
    child = run("design", "submit", "cli", str(path), "--parent", seed["id"], "--json")
    assert child["name"] == "mine" and child["parents"] == [seed["id"]]
    dup = run("design", "submit", "cli", str(path), code=1)
    assert "ALREADY_EXISTS" in dup and child["id"] in dup
    shown = run("design", "show", child["id"], "--json")
    assert shown["tree"]["root"] == "GPT2" and "class GPT2" in shown["source"]
    lineage = run("design", "lineage", child["id"], "--json")
    assert {d["id"] for d in lineage["designs"]} == {seed["id"], child["id"]}
    board = run("leaderboard", "cli", "--json")
    assert {e["design_id"] for e in board} == {seed["id"], child["id"]}
    assert "score=" in run("leaderboard", "cli")
    budget = run("budget", "show", "cli", "--json")["ledger"]["rungs"]
    assert [(r["rung"], r["total"]) for r in budget] == [("micro", 3), ("tiny", 1)]
    assert run("budget", "set", "cli", "micro", "9", "--json")["rungs"][0]["total"] == 9
    assert "micro" in run("budget", "show", "cli")
    assert run("workers", "--json") == [] and run("jobs", "--json") == []
    events = run("watch", "cli", "--after", "0", "--timeout", "1", "--json", raw=True)
    kinds = [json.loads(line)["kind"] for line in events.splitlines()]
    assert "EVENT_KIND_DESIGN_SUBMITTED" in kinds and "EVENT_KIND_BUDGET_CHANGED" in kinds


def test_tokens_and_errors(run, server, tmp_path, monkeypatch):
    token = run("token", "create", "bob", "--role", "worker").strip()
    assert token.count(".") == 1
    assert "revoked" in run("token", "revoke", "bob")
    assert "NOT_FOUND" in run("design", "show", "dnope", code=1)
    assert "NOT_FOUND" in run("token", "revoke", "nobody", code=1)
    run("token", "create", "x", "--role", "king", code=2)
    run("budget", "set", "cli", "micro", "-1", code=2)
    bad = CliRunner().invoke(cli, ["experiment", "list"], env={
        "GENESYS_COORDINATOR": server.address, "GENESYS_TOKEN": token})
    assert bad.exit_code == 1 and "UNAUTHENTICATED" in bad.output
    assert "the token given was refused" in bad.output and "D/token" in bad.output
    monkeypatch.chdir(tmp_path)  # no .genesys data dir here: no token to fall back on
    none = CliRunner().invoke(cli, ["experiment", "list", "--token", ""],
                              env={"GENESYS_COORDINATOR": server.address, "GENESYS_CONFIG": ""})
    assert none.exit_code == 1 and "UNAUTHENTICATED" in none.output
    assert "--token" in none.output and "GENESYS_TOKEN" in none.output

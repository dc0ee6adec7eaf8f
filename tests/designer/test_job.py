"""design_job: the DESIGN-job entry point (fake checker here; one real check when available)."""

from __future__ import annotations

import json

import pytest
from genesys.design import load_design
from genesys.designer import design_job
from genesys.designer.job import seed_sources
from genesys.v1 import design_pb2
from google.protobuf import json_format


def payload(operation="mutation", names=("gpt",), **extra):
    sources = seed_sources()
    parents = [{"id": f"d{i}", "name": n, "source": sources[n]} for i, n in enumerate(names)]
    return {"operation": operation, "parents": parents, "seed": 11, **extra}


def test_returns_a_checked_child_with_a_trace():
    checked, events = [], []
    result = design_job(payload("crossover", ("gpt", "retnet")), events.append,
                        check=lambda d: checked.append(d.digest) or {"ok": True, "stage": "all"})
    assert result["ok"] and result["checked"]
    child = load_design(result["source"])
    assert child.digest == result["digest"] == checked[-1]
    assert result["parents"] == ["d0", "d1"] and result["operation"] == "crossover"
    trace = json_format.ParseDict(result["trace"], design_pb2.DesignTrace())
    assert trace.operation == design_pb2.DESIGN_OPERATION_CROSSOVER and trace.notes
    assert json.loads(trace.metadata_json)["check"] == {"ok": True, "stage": "all"}
    assert {e["stage"] for e in events} == {"propose", "check"}


def test_moves_known_digests_and_skips_failed_checks():
    first = design_job(payload(), check=lambda d: {"ok": True})
    again = design_job(payload(), check=lambda d: {"ok": True})
    assert again["digest"] == first["digest"]  # deterministic under the payload seed
    moved = design_job(payload(known_digests=[first["digest"]]), check=lambda d: {"ok": True})
    assert moved["ok"] and moved["digest"] != first["digest"] and moved["trace"]["attempts"] == 1
    assert any("duplicate" in n for n in moved["trace"]["notes"])  # the first draw was `first`
    verdicts = iter([False, True])
    result = design_job(payload(), check=lambda d: {"valid": next(verdicts), "checks": [
        {"name": "effectiveness", "passed": False, "message": "loss did not fall"}]})
    assert result["ok"] and result["digest"] != first["digest"]
    assert [r["reason"] for r in result["rejected"]] == ["effectiveness: loss did not fall"]
    assert result["trace"]["attempts"] == 2


def test_gives_up_after_max_candidates():
    result = design_job(payload(max_candidates=2), check=lambda d: {"ok": False, "error": "nan"})
    assert not result["ok"] and len(result["rejected"]) == 2 and "nan" in result["error"]


def test_scratch_and_unchecked_mode():
    result = design_job({"operation": "scratch", "seed": 2, "check": False})
    assert result["ok"] and not result["checked"] and result["parents"] == []
    assert load_design(result["source"]).digest == result["digest"]


@pytest.mark.slow
def test_real_checker_passes_children_of_seeds():
    result = design_job(payload("mutation", ("gpt",), max_candidates=3))
    assert result["ok"], result["rejected"]
    fingerprint = result["check"]["fingerprint"]
    assert fingerprint and result["parent_fingerprints"]["d0"] not in ("", fingerprint)
    crossed = payload("crossover", ("mamba2", "gpt"), max_candidates=3)
    crossed["parents"][0]["fingerprint"] = "known"  # measured by an earlier job
    result = design_job(crossed)
    assert result["ok"], result["rejected"]
    assert result["parent_fingerprints"] == {}


def test_functional_duplicates_are_rejected_and_seed_fingerprints_reported():
    checked = []

    def same_network(design):  # every candidate computes what its parent computes
        checked.append(design.name)
        return {"ok": True, "fingerprint": "f" * 32}

    result = design_job(payload(max_candidates=2), check=same_network)
    assert not result["ok"]
    assert [r["reason"] for r in result["rejected"]] == ["functional duplicate of d0 (same fingerprint)"] * 2
    assert result["parent_fingerprints"] == {"d0": "f" * 32}
    assert checked.count("gpt") == 1, "the seed parent is checked once"
    known = design_job(payload(known_fingerprints={"e" * 32: "d7"}),
                       check=lambda d: {"ok": True, "fingerprint": "e" * 32 if d.name != "gpt" else "g"})
    assert not known["ok"] and "functional duplicate of d7" in known["rejected"][0]["reason"]
    distinct = design_job(payload(), check=lambda d: {"ok": True, "fingerprint": d.digest})
    assert distinct["ok"] and distinct["parent_fingerprints"]["d0"] != distinct["check"]["fingerprint"]
    assert json.loads(distinct["trace"]["check_report_json"])["fingerprint"] == distinct["digest"]

"""Verification's scores come from the trusted grader, whatever the design does in the
worker: a design that rewrites the worker's scoring is refused, never scored."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from genesys.lmade.verify import verify, write_result

HOSTILE = Path(__file__).resolve().parent / "hostile"


@pytest.mark.slow
def test_design_that_forges_its_log_probs_is_refused(tiny_data, tmp_path):
    result = verify(str(HOSTILE / "forge_scores.py"), "micro", tokens=32 * 4 * 2,
                    data_dir=tiny_data.folder, out_dir=tmp_path / "run", check=False,
                    train={"context": 32, "batch_size": 4}, eval={"n_items": 10})
    assert result["status"] == "failed", result.get("reason")
    assert "not a distribution" in result["reason"]
    assert result["fitness"] is None and "metrics" not in result


def test_result_file_replaces_a_planted_link_instead_of_following_it(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(target, out / "result.json")
    write_result(out, {"status": "ok"})
    assert target.read_text() == "keep me"
    assert not (out / "result.json").is_symlink()
    assert '"status": "ok"' in (out / "result.json").read_text()

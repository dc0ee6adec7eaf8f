"""`genesys data prepare|info` and `genesys verify` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def genesys(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from genesys.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_data_prepare_and_info(text_corpus, tmp_path):
    out = tmp_path / "ds"
    proc = genesys(
        "data",
        "prepare",
        "--source",
        str(text_corpus),
        "--tokenizer",
        "bpe512",
        "--val-frac",
        "0.1",
        "--test-frac",
        "0.1",
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["dtype"] == "uint16" and manifest["splits"]["train"]["tokens"] > 0
    assert all(s["sha256"] for s in manifest["splits"]["val"]["shards"])
    info = genesys("data", "info", str(out), "--verify")
    assert info.returncode == 0 and "train: docs=" in info.stdout


def test_bad_inputs_exit_with_clear_messages(tmp_path):
    proc = genesys(
        "data", "prepare", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "o")
    )
    assert (
        proc.returncode == 1 and "does not exist" in proc.stderr and "--source PATH" in proc.stderr
    )
    proc = genesys("verify", "gpt", "--data", str(tmp_path / "missing"), "--no-check")
    assert proc.returncode == 1 and "genesys data prepare" in proc.stderr
    proc = genesys("verify", "no_such_design_or_seed", "--data", str(tmp_path))
    assert proc.returncode == 2 and "neither a design file nor a seed" in proc.stderr
    proc = genesys("verify", "gpt", "--scale", "huge")
    assert proc.returncode == 2 and "unknown scale" in proc.stderr


@pytest.mark.slow
def test_verify_runs_check_train_evaluate_in_the_sandbox(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = genesys(
        "verify",
        "gpt",
        "--scale",
        "micro",
        "--tokens",
        str(32 * 4 * 6),
        "--context",
        "32",
        "--batch-size",
        "4",
        "--eval-items",
        "20",
        "--data",
        str(tiny_data.folder),
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "ok" and result["check"]["valid"] is True
    assert result["sandbox"]["reason"] == "ok"
    assert result["train"]["tokens_seen"] == 32 * 4 * 6 and result["train"]["steps"] == 6
    assert set(result["eval"]["tasks"]) == {
        "genesys_heldout_ppl",
        "genesys_cloze",
        "genesys_nextsent",
    }
    assert 0.0 <= result["fitness"] <= 1.0
    assert json.loads((out / "result.json").read_text())["fitness"] == result["fitness"]
    # a second run with --resume finds the finished checkpoint and only re-evaluates
    again = genesys(
        "verify",
        "gpt",
        "--scale",
        "micro",
        "--tokens",
        str(32 * 4 * 6),
        "--context",
        "32",
        "--batch-size",
        "4",
        "--eval-items",
        "20",
        "--data",
        str(tiny_data.folder),
        "--out",
        str(out),
        "--json",
        "--resume",
        "--no-check",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["train"]["train_loss"] == result["train"]["train_loss"]

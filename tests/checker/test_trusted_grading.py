"""Trusted grading: design code runs only in the worker; verdicts come from the grader.

The hostile corpus (``hostile/``) tries what an evaluator-gaming search would: rewriting the
grader from the worker's frames, being causal only when it guesses it is probed (by batch
shape, by input statistics), and blocks that contribute nothing.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from genesys.lmade import checker
from genesys.lmade.checker import DEFAULT_LIMITS, CheckSettings, check
from genesys.lmade.wire import MAX_ELEMENTS, WireError, pack, unpack
from hypothesis import given
from hypothesis import strategies as st

HOSTILE = Path(__file__).resolve().parent / "hostile"
FAST = CheckSettings(train_steps=8, efficiency_rounds=3)
LIMITS = replace(DEFAULT_LIMITS, wall_s=90, cpu_s=60)


def runtime_checks(name: str) -> list[checker.CheckResult]:
    """The runtime checks alone: these designs would not get past the static format check,
    which is only an early message; the grading must hold without it."""
    source = (HOSTILE / f"{name}.py").read_text()
    progress = checker._Progress(None)
    result, _ = checker._run_grader(source, name, FAST, LIMITS, progress)
    return checker._merge(progress, result, LIMITS)


def failed(checks: list[checker.CheckResult]) -> checker.CheckResult:
    bad = [c for c in checks if not c.passed]
    assert bad, [(c.name, c.message) for c in checks]
    return bad[0]


@pytest.mark.slow
def test_design_that_rewrites_the_grader_from_its_frames_is_still_judged():
    verdict = failed(runtime_checks("forge_replies"))
    # The forged (all-zero, hence causal) logits cannot show any learning.
    assert verdict.name == "effectiveness" and "does not fall" in verdict.message


@pytest.mark.slow
@pytest.mark.parametrize("name", ["probe_batch_size", "probe_statistics"])
def test_design_causal_only_when_probed_is_caught(name):
    report = check(HOSTILE / f"{name}.py", settings=FAST, limits=LIMITS)
    assert not report.valid
    assert report.failed.name in ("causality", "effectiveness"), report.to_json()
    assert "not causal" in report.failed.message


@pytest.mark.slow
def test_block_that_adds_nothing_fails_effectiveness_naming_its_parameters():
    report = check(HOSTILE / "do_nothing.py", settings=FAST, limits=LIMITS)
    assert report.failed is not None and report.failed.name == "effectiveness"
    assert "add nothing" in report.failed.message
    assert "blocks.0.up.weight (unit Block)" in report.failed.message


@pytest.mark.slow
def test_probes_change_per_check_and_replay_with_a_fixed_seed():
    a, b = check("gpt", settings=FAST), check("gpt", settings=FAST)
    assert a.valid and b.valid
    assert a.sandbox["probe_seed"] != b.sandbox["probe_seed"]
    fixed = replace(FAST, probe_seed=a.sandbox["probe_seed"])
    c = check("gpt", settings=fixed)
    causality = {r.name: r.message for r in a.checks}["causality"]
    assert causality == {r.name: r.message for r in c.checks}["causality"]
    assert a.fingerprint == b.fingerprint == c.fingerprint != ""


def test_wire_round_trip():
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert np.array_equal(unpack(pack(array), shape=(2, None, 4)), array)


@pytest.mark.parametrize("value, words", [
    ("nope", "expected an array"),
    ({"dtype": "object", "shape": [1], "data": ""}, "dtype"),
    ({"dtype": "float32", "shape": [-1], "data": ""}, "shape"),
    ({"dtype": "float32", "shape": [MAX_ELEMENTS + 1], "data": ""}, "exceeds"),
    ({"dtype": "float32", "shape": [2], "data": "!!"}, "base64"),
    ({"dtype": "float32", "shape": [2], "data": base64.b64encode(b"abc").decode()}, "length"),
])
def test_wire_refuses_malformed_arrays(value, words):
    with pytest.raises(WireError, match=words):
        unpack(value)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["dtype", "shape", "data", "x"]), inner,
                                      max_size=4)))
def test_wire_never_fails_other_than_with_wire_error(value):
    try:
        unpack(value)
    except WireError:
        pass

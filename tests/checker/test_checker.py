"""The checker on the broken-design corpus and on the seeds."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from genesys.lmade import seeds
from genesys.lmade.checker import CHECK_NAMES, DEFAULT_LIMITS, CheckSettings, check
from genesys.lmade.sandbox import isolation

BROKEN = Path(__file__).resolve().parent / "broken"
PWNED = ("/tmp/genesys-checker-pwned-shell", "/tmp/genesys-checker-pwned-write")
HOSTILE_LIMITS = replace(DEFAULT_LIMITS, wall_s=60, cpu_s=20, memory_mb=3072)
FAST = CheckSettings(train_steps=8, efficiency_rounds=3)

# design file -> (the check that must fail, words its message must contain)
EXPECTED = {
    "syntax_error": ("format", ["syntax error", "line 6"]),
    "forbidden_import": ("format", ["import of 'os' is not allowed"]),
    "shape_change": ("forward", ["Block", "shaped like X"]),
    "non_causal": ("causality", ["not causal", "position 0"]),
    "nan_op": ("numerics", ["NaN", "logits"]),
    "no_grad_param": ("differentiability", ["no gradient", "blocks.0.gate (unit Block)"]),
    "loss_flat": ("effectiveness", ["does not fall"]),
    "too_slow": ("efficiency", ["too slow", "GPT step time"]),
    "infinite_loop": ("forward", ["endless loop"]),
    "unbounded_alloc": ("forward", ["out of memory", "line 17, in _forward",
                                    "self.history.append(torch.ones(64, 1024, 1024))"]),
    "fork_bomb": ("init", ["forbidden operation", "os.fork"]),
    "socket_open": ("forward", ["forbidden operation", "socket"]),
    "shell_command": ("init", ["forbidden operation", "os.system"]),
    "read_outside": ("init", ["forbidden operation", "/etc/passwd"]),
    "write_outside": ("forward", ["genesys-checker-pwned-write"]),
    "segfault": ("forward", ["forbidden operation", "ctypes"]),
    "sigsegv_self": ("forward", ["SIGSEGV"]),
    "os_exit": ("init", ["ended the process", "code 0"]),
    "sigkill_self": ("forward", ["SIGKILL"]),
}
LIMITS = {"infinite_loop": replace(HOSTILE_LIMITS, cpu_s=5, wall_s=20)}


def test_corpus_covers_every_file():
    files = {p.stem for p in BROKEN.glob("*.py")}
    assert files == set(EXPECTED) | {"unused_param"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_design_fails_at_the_right_check(name):
    if name == "write_outside" and not isolation().jail:
        pytest.skip(
            "no file-system jail here (user namespaces unavailable): a write from native code "
            "(torch.save) is only stopped by the jail, the audit hook cannot see it"
        )
    for path in PWNED:
        if os.path.exists(path):
            os.remove(path)
    report = check(BROKEN / f"{name}.py", limits=LIMITS.get(name, HOSTILE_LIMITS),
                   settings=FAST)
    stage, words = EXPECTED[name]
    assert not report.valid
    failed = report.failed
    assert failed is not None and failed.name == stage, report.to_json()
    for word in words:
        assert word in failed.message, failed.message
    assert [c.name for c in report.checks] == list(CHECK_NAMES[: len(report.checks)])
    assert all(c.passed for c in report.checks[:-1])
    assert not any(os.path.exists(p) for p in PWNED), "the design changed the host"


@pytest.mark.slow
@pytest.mark.parametrize("seed", seeds.names())
def test_seed_is_valid(seed):
    report = check(seed)
    assert report.valid, report.to_json()
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert report.params > 0 and report.digest == seeds.get(seed).digest
    data = json.loads(report.to_json())
    assert {"valid", "digest", "checks", "params", "seconds"} <= set(data)
    assert {"name", "passed", "message"} <= set(data["checks"][0])

"""`genesys demo` end to end with a tiny configuration: real coordinator, agents, designer,
checker, training and evaluation processes on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from genesys.gpu_agent.demo import DemoSettings, run_demo

pytestmark = pytest.mark.slow
REPORT_FILES = ["fitness.png", "index.html", "lineage.png", "pareto.png", "quadrants.png"]


def _settings(root: Path, designs: int, **changes) -> DemoSettings:
    return DemoSettings(designs=designs, workers=2, root=root, tokens=8192, eval_items=20,
                        corpus_mb=2.0, timeout_s=900, progress=False, **changes)


def test_demo_verifies_seeds_evolves_designs_and_writes_a_report(searchable_tmp_path: Path):
    root = searchable_tmp_path / "demo"
    result = run_demo(_settings(root, designs=3), say=lambda message: None)

    seeds = [row for row in result.leaderboard if row["seed"]]
    assert len(seeds) == 5 and all(row["metrics"] for row in seeds)
    assert result.new_verified >= 2
    new = [row for row in result.leaderboard if not row["seed"] and row["metrics"]]
    assert len(new) == result.new_verified
    assert any(row["fitness"] > 0 for row in result.leaderboard)
    assert result.report_files == REPORT_FILES
    assert all((result.report_dir / name).stat().st_size > 0 for name in REPORT_FILES)
    html = (result.report_dir / "index.html").read_text()
    assert all(row["name"] in html for row in seeds)

    # Re-running continues the same experiment (agents simulate training this time).
    again = run_demo(_settings(root, designs=1, agent_args=("--dry-run", "0.5")),
                     say=lambda message: None)
    assert again.designs == result.designs + 1
    assert sum(row["seed"] for row in again.leaderboard) == 5
    assert again.verified >= result.verified + 1

"""Report statistics: Spearman with its interval, correlations between rungs, Pareto front."""

from __future__ import annotations

import pytest
from genesys import report_stats as rs
from hypothesis import given
from hypothesis import strategies as st


def test_spearman_known_values_and_ties():
    assert rs.ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]
    assert rs.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rs.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # textbook example: d^2 sum 4 over n = 5 -> 1 - 6 * 4 / (5 * 24) = 0.8
    assert rs.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        rs.spearman([1], [1])


values = st.floats(-1e6, 1e6) | st.integers(0, 3).map(float)


@given(st.lists(st.tuples(values, values), min_size=4, max_size=40))
def test_spearman_is_a_bounded_rank_statistic(pairs):
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    rho = rs.spearman(xs, ys)
    assert -1 - 1e-9 <= rho <= 1 + 1e-9
    assert rs.spearman([2 * x for x in xs], ys) == pytest.approx(rho, abs=1e-9), "ranks only"
    assert rs.spearman(xs[::-1], ys[::-1]) == pytest.approx(rho, abs=1e-9), "order of pairs"
    low, high = rs.spearman_interval(rho, len(xs))
    assert low <= rho + 1e-9 and rho - 1e-9 <= high


def test_interval_narrows_with_more_designs():
    wide, narrow = rs.spearman_interval(0.6, 6), rs.spearman_interval(0.6, 60)
    assert wide[0] < narrow[0] < 0.6 < narrow[1] < wide[1]
    assert rs.spearman_interval(0.9, 3) == (-1.0, 1.0), "too few pairs for an interval"


def design(i: int, fitness: float, results: dict[str, dict]) -> dict:
    return {"id": f"d{i}", "fitness": fitness,
            "results": [{"rung": r, **fields} for r, fields in results.items()]}


def test_rung_correlations_need_designs_on_both_rungs():
    designs = [design(i, 0.1 * i, {"micro": {"metrics": {"bpb": 3 - 0.1 * i, "acc": (i * 7) % 5}},
                                   "tiny": {"metrics": {"bpb": 2.5 - 0.1 * i, "acc": i % 3}}})
               for i in range(6)]
    designs.append(design(9, 0.0, {"micro": {"metrics": {"bpb": 9.0}}}))  # micro only
    rows = {(r.low, r.high, r.metric): r for r in rs.rung_correlations(designs, ["micro", "tiny"])}
    assert set(rows) == {("micro", "tiny", "bpb"), ("micro", "tiny", "acc")}
    bpb = rows["micro", "tiny", "bpb"]
    assert bpb.n == 6 and bpb.rho == pytest.approx(1.0) and bpb.ci_low > 0.5
    assert rs.rung_correlations(designs[:3], ["micro", "tiny"]) == [], "fewer than 4 designs"


def test_pareto_front_of_quality_throughput_and_memory():
    designs = [design(0, 0.9, {"micro": {"tokens_per_second": 100, "peak_memory_bytes": 50}}),
               design(1, 0.5, {"micro": {"tokens_per_second": 400, "peak_memory_bytes": 50}}),
               design(2, 0.4, {"micro": {"tokens_per_second": 90, "peak_memory_bytes": 60}}),
               design(3, 0.3, {"micro": {"tokens_per_second": 80, "peak_memory_bytes": 10}}),
               design(4, 0.95, {"tiny": {"tokens_per_second": 500}})]
    assert rs.pareto_front(designs, "micro") == ["d0", "d1", "d3"]

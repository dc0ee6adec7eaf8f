"""Statistics of an experiment for the report and the SDK (pure Python, no plotting).

- ``spearman(x, y)``: Spearman's rank correlation (average ranks for ties), with a
  confidence interval from Fisher's z transform (standard error 1.06 / sqrt(n - 3), Fieller,
  Hartley and Pearson 1957) in ``spearman_interval``;
- ``rung_correlations(designs)``: for every pair of rungs where at least ``min_designs``
  designs were verified on both, the rank correlation of each metric both rungs report:
  the number that says whether the cheap rung predicts the expensive one;
- ``pareto_front(designs, rung)``: the designs no other design beats on quality (fitness)
  and training throughput and peak memory at once.

Designs are genesys.v1 Design messages (basic view) or dicts of the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any


def _as_dict(design: Any) -> dict:
    if hasattr(design, "DESCRIPTOR"):
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(design, preserving_proto_field_name=True)
    return design


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else 0.0


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("spearman needs two sequences of the same length >= 2")
    return max(-1.0, min(1.0, _pearson(ranks(x), ranks(y))))


def spearman_interval(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of a Spearman correlation of n pairs (n >= 4; else [-1, 1])."""
    if n < 4:
        return -1.0, 1.0
    z = math.atanh(max(-0.999999, min(0.999999, rho)))
    half = NormalDist().inv_cdf(0.5 + level / 2) * 1.06 / math.sqrt(n - 3)
    return min(rho, math.tanh(z - half)), max(rho, math.tanh(z + half))  # holds rho at +-1


@dataclass(frozen=True)
class RungCorrelation:
    low: str  # the cheaper rung (earlier in the ladder)
    high: str
    metric: str
    n: int
    rho: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict:
        return dict(vars(self))


def _results(design: dict) -> dict[str, dict]:
    return {r["rung"]: r for r in design.get("results") or []}


def rung_correlations(designs: Iterable[Any], ladder: Sequence[str] | None = None,
                      min_designs: int = 4, level: float = 0.95) -> list[RungCorrelation]:
    """Spearman correlations of each shared metric between every pair of rungs (see
    module docstring); `ladder` orders the rungs (default: the order results appear)."""
    rows = [_results(_as_dict(d)) for d in designs]
    order = list(ladder or [])
    for results in rows:
        order += [r for r in results if r not in order]
    out = []
    for i, low in enumerate(order):
        for high in order[i + 1:]:
            both = [r for r in rows if low in r and high in r]
            if len(both) < min_designs:
                continue
            metrics = set.intersection(*(set(r[low].get("metrics") or {})
                                         & set(r[high].get("metrics") or {}) for r in both))
            for metric in sorted(metrics):
                x = [float(r[low]["metrics"][metric]) for r in both]
                y = [float(r[high]["metrics"][metric]) for r in both]
                rho = spearman(x, y)
                out.append(RungCorrelation(low, high, metric, len(both), rho,
                                           *spearman_interval(rho, len(both), level)))
    return out


def objectives(design: Any, rung: str) -> tuple[float, float, float] | None:
    """(fitness, tokens/s, -peak memory) at `rung` (larger is better in each), or None."""
    d = _as_dict(design)
    result = _results(d).get(rung)
    if result is None:
        return None
    return (float(d.get("fitness") or 0.0), float(result.get("tokens_per_second") or 0.0),
            -float(result.get("peak_memory_bytes") or 0))


def pareto_front(designs: Iterable[Any], rung: str) -> list[str]:
    """Ids of the designs verified at `rung` that no other design there dominates (at
    least as good on every objective, better on one), best fitness first."""
    points = {}
    for design in designs:
        d = _as_dict(design)
        if (p := objectives(d, rung)) is not None:
            points[d["id"]] = p
    front = [i for i, p in points.items()
             if not any(all(a >= b for a, b in zip(q, p, strict=True)) and q != p
                        for q in points.values())]
    return sorted(front, key=lambda i: (-points[i][0], i))

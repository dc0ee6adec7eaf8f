"""Numbers behind the experiment plots: best fitness so far, the Pareto front of fitness
against training cost, and rank correlation between rungs. Pure functions of plain values."""

from __future__ import annotations

from collections.abc import Sequence


def best_so_far(values: Sequence[float]) -> list[float]:
    """Running maximum of `values` (in the order given)."""
    out: list[float] = []
    for value in values:
        out.append(value if not out else max(out[-1], value))
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, fitness) that no other point beats on both: lower or equal
    cost and higher or equal fitness, strictly better on one. Sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def ranks(values: Sequence[float]) -> list[float]:
    """Fractional ranks (1-based; ties share the mean of their positions)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            out[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired values; None when fewer than 3 pairs or a side
    is constant (no ranking to compare)."""
    if len(xs) != len(ys):
        raise ValueError("spearman needs paired values")
    if len(xs) < 3:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    if vx == 0 or vy == 0:
        return None
    return cov / (vx * vy) ** 0.5

"""Plot specifications for the browser (static/app.js draws them with uPlot): x values in
ascending order, one aligned list of y values per series (None where a series has no
point), and optionally the design each x belongs to, so a click opens it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def best_so_far(values: Sequence[float]) -> list[float]:
    """Running maximum of `values` (in the order given)."""
    out: list[float] = []
    for value in values:
        out.append(value if not out else max(out[-1], value))
    return out


def series(label: str, values: Sequence[float | None], color: str, *, points: bool = False,
           line: bool = True, dash: bool = False) -> dict[str, Any]:
    return {"label": label, "values": list(values), "color": color, "points": points,
            "line": line, "dash": dash}


def spec(x: Sequence[float], lines: list[dict[str, Any]], *, xlabel: str, ylabel: str,
         time: bool = False, links: Sequence[str] | None = None, names: Sequence[str] | None = None
         ) -> dict[str, Any] | None:
    """None when there is nothing to draw (the page says "not recorded")."""
    if not x:
        return None
    return {"x": list(x), "series": lines, "xlabel": xlabel, "ylabel": ylabel, "time": time,
            "links": list(links or []), "names": list(names or [])}


def scatter_by_group(x: Sequence[float], y: Sequence[float], groups: Sequence[str],
                     colors: dict[str, str], *, xlabel: str, ylabel: str,
                     links: Sequence[str] = (), names: Sequence[str] = ()) -> dict[str, Any] | None:
    """Points coloured by group; `x` must already be ascending."""
    lines = [series(g.replace("_", " "), [v if k == g else None for v, k in zip(y, groups, strict=True)],
                    colors.get(g, "#888888"), points=True, line=False)
             for g in sorted(set(groups))]
    return spec(x, lines, xlabel=xlabel, ylabel=ylabel, links=links, names=names)

"""Experiment report: PNG plots (fitness over time, fitness/confidence quadrants, lineage
tree) and an HTML page showing them with the leaderboard.

Input is the experiment's designs as the SDK returns them (genesys.v1 Design messages,
basic view is enough) or plain dicts of the same shape (MessageToDict output with proto
field names). matplotlib (the `report` extra) is imported only when plotting, through its
object-oriented API (no pyplot state, no GUI backend).
"""

from __future__ import annotations

import html
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

QUADRANT_COLORS = {
    "good_confident": "#1b9e77", "good_unconfident": "#7570b3",
    "poor_confident": "#d95f02", "poor_unconfident": "#999999", "unspecified": "#cccccc",
}
OPERATION_MARKERS = {"seed": "*", "mutation": "o", "crossover": "D", "scratch": "s", "unspecified": "o"}
FILES = {"fitness": "fitness.png", "quadrants": "quadrants.png", "lineage": "lineage.png",
         "html": "index.html"}


@dataclass
class Node:
    """One design as the report needs it."""

    id: str
    name: str
    parents: list[str] = field(default_factory=list)
    fitness: float = 0.0
    confidence: int = 0
    quadrant: str = "unspecified"
    state: str = "unspecified"
    operation: str = "unspecified"
    seed: bool = False
    created: float | None = None  # epoch seconds
    reported: float | None = None  # first rung result, epoch seconds
    rungs: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # of the last verified rung

    @property
    def verified(self) -> bool:
        return bool(self.rungs)


def _enum(value: Any, enum_name: str, prefix: str) -> str:
    if isinstance(value, int):
        from genesys.v1 import design_pb2

        value = getattr(design_pb2, enum_name).Name(value)
    return str(value or "unspecified").removeprefix(prefix).lower()


def _time(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def to_node(design: Any) -> Node:
    """A Node from a genesys.v1 Design message or a dict of the same shape."""
    if hasattr(design, "DESCRIPTOR"):
        from google.protobuf.json_format import MessageToDict

        design = MessageToDict(design, preserving_proto_field_name=True)
    results = design.get("results") or []
    trace = design.get("trace") or {}
    seed = bool(design.get("seed"))
    operation = _enum(trace.get("operation") or design.get("operation"), "DesignOperation",
                      "DESIGN_OPERATION_")
    reported = [t for t in (_time(r.get("reported_at")) for r in results) if t is not None]
    return Node(
        id=design["id"], name=design.get("name") or design["id"],
        parents=list(design.get("parents") or []),
        fitness=float(design.get("fitness") or 0.0), confidence=int(design.get("confidence") or 0),
        quadrant=_enum(design.get("quadrant"), "Quadrant", "QUADRANT_"),
        state=_enum(design.get("state"), "DesignState", "DESIGN_STATE_"),
        operation="seed" if seed else operation, seed=seed,
        created=_time(design.get("created_at")), reported=min(reported) if reported else None,
        rungs=[r["rung"] for r in results],
        metrics={k: float(v) for k, v in ((results[-1].get("metrics") or {}) if results else {}).items()},
    )


def ranked(nodes: list[Node]) -> list[Node]:
    """Verified designs by fitness, then confidence (the coordinator's leaderboard order)."""
    return sorted((n for n in nodes if n.verified), key=lambda n: (-n.fitness, -n.confidence, n.id))


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'genesys[report]'") from None
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def plot_fitness(nodes: list[Node], path: Path) -> Path:
    """Fitness of each verified design against the time its first result arrived,
    with the best-so-far line."""
    verified = [n for n in nodes if n.verified]
    stamps = [n.reported or n.created for n in verified]
    start = min((t for t in stamps if t is not None), default=None)
    points = sorted(
        (((t - start) / 60 if t is not None and start is not None else float(i)), n)
        for i, (t, n) in enumerate(zip(stamps, verified, strict=True))
    )
    fig = _figure(8, 4.5)
    ax = fig.subplots()
    for op, marker in OPERATION_MARKERS.items():
        sel = [(x, n.fitness) for x, n in points if n.operation == op]
        if sel:
            ax.scatter(*zip(*sel, strict=True), marker=marker, s=60 if op == "seed" else 30,
                       label=op, alpha=0.8)
    if points:
        best, xs, ys = -math.inf, [], []
        for x, n in points:
            best = max(best, n.fitness)
            xs.append(x)
            ys.append(best)
        ax.step(xs, ys, where="post", color="black", linewidth=1.5, label="best so far")
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no verified designs yet", ha="center", transform=ax.transAxes)
    timed = start is not None
    ax.set_xlabel("minutes since the first result" if timed else "design (order verified)")
    ax.set_ylabel("fitness")
    ax.set_title(f"Fitness over time ({len(verified)} verified designs)")
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def _jitter(design_id: str) -> float:
    return (zlib.crc32(design_id.encode()) % 1000 / 1000 - 0.5) * 0.3


def plot_quadrants(nodes: list[Node], path: Path, label_top: int = 5) -> Path:
    """Fitness against confidence, coloured by quadrant, with the quadrant cuts."""
    fig = _figure(7, 5)
    ax = fig.subplots()
    for quadrant, color in QUADRANT_COLORS.items():
        sel = [n for n in nodes if n.quadrant == quadrant]
        if sel:
            ax.scatter([n.confidence + _jitter(n.id) for n in sel], [n.fitness for n in sel],
                       c=color, s=36, label=quadrant.replace("_", " "), edgecolors="black",
                       linewidths=0.4)
    good = [n.fitness for n in nodes if n.quadrant.startswith("good")]
    confident = [n.confidence for n in nodes if n.quadrant.endswith("_confident")]
    if good:
        ax.axhline(min(good), color="grey", linestyle="--", linewidth=0.8)
    if confident:
        ax.axvline(min(confident) - 0.5, color="grey", linestyle="--", linewidth=0.8)
    for n in ranked(nodes)[:label_top]:
        ax.annotate(n.name, (n.confidence + _jitter(n.id), n.fitness), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    if nodes:  # integer confidences; keep the jitter small against the axis
        from matplotlib.ticker import MaxNLocator

        confidences = [n.confidence for n in nodes]
        ax.set_xlim(min(confidences) - 1, max(confidences) + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("confidence (verification depth)")
    ax.set_ylabel("fitness")
    ax.set_title("Designs by fitness and confidence")
    ax.grid(alpha=0.3)
    if nodes:
        ax.legend(fontsize=8, loc="best")
    fig.savefig(path)
    return path


def layers(nodes: list[Node]) -> dict[str, tuple[int, float]]:
    """A layered layout: (generation, x) per design. Generation = 1 + the deepest parent
    (seeds and orphans 0); within a generation designs sit at their parents' mean x
    (barycentre), spread to distinct positions."""
    by_id = {n.id: n for n in nodes}
    depth: dict[str, int] = {}

    def generation(node_id: str, visiting: frozenset[str] = frozenset()) -> int:
        if node_id not in depth:
            parents = [p for p in by_id[node_id].parents if p in by_id and p not in visiting]
            depth[node_id] = 1 + max((generation(p, visiting | {node_id}) for p in parents),
                                     default=-1)
        return depth[node_id]

    for n in nodes:
        generation(n.id)
    order = sorted(nodes, key=lambda n: (n.created or 0.0, n.id))
    pos: dict[str, tuple[int, float]] = {}
    for g in sorted(set(depth.values())):
        row = [n for n in order if depth[n.id] == g]
        wanted = {
            n.id: (sum(pos[p][1] for p in n.parents if p in pos) / max(1, sum(p in pos for p in n.parents))
                   if any(p in pos for p in n.parents) else float(i))
            for i, n in enumerate(row)
        }
        row.sort(key=lambda n: (wanted[n.id], n.id))
        width = len(row)
        for i, n in enumerate(row):
            pos[n.id] = (g, i - (width - 1) / 2)
    return pos


def plot_lineage(nodes: list[Node], path: Path) -> Path:
    """The evolution tree: generations top to bottom, colour = fitness, dashed = second parent."""
    pos = layers(nodes)
    widest = max((sum(1 for g, _ in pos.values() if g == row) for row in {g for g, _ in pos.values()}),
                 default=1)
    generations = 1 + max((g for g, _ in pos.values()), default=0)
    fig = _figure(min(24, 4 + 0.7 * widest), min(18, 2 + 1.2 * generations))
    ax = fig.subplots()
    for n in nodes:
        g, x = pos[n.id]
        for k, p in enumerate(q for q in n.parents if q in pos):
            pg, px = pos[p]
            ax.plot([px, x], [-pg, -g], color="grey", linewidth=0.8, linestyle="-" if k == 0 else "--",
                    zorder=1)
    verified = [n for n in nodes if n.verified]
    if verified:
        sc = ax.scatter([pos[n.id][1] for n in verified], [-pos[n.id][0] for n in verified],
                        c=[n.fitness for n in verified], cmap="viridis", s=80, zorder=2,
                        edgecolors="black", linewidths=0.5)
        fig.colorbar(sc, ax=ax, label="fitness", shrink=0.8)
    for label, color, sel in (("failed", "#d62728", [n for n in nodes if n.state == "failed"]),
                              ("not verified", "#dddddd",
                               [n for n in nodes if not n.verified and n.state != "failed"])):
        if sel:
            ax.scatter([pos[n.id][1] for n in sel], [-pos[n.id][0] for n in sel], c=color, s=60,
                       marker="X", zorder=2, edgecolors="black", linewidths=0.4, label=label)
    if any(not n.verified for n in nodes):
        ax.legend(fontsize=7, loc="upper right")
    if len(nodes) <= 80:
        for n in nodes:
            g, x = pos[n.id]
            ax.annotate(n.name, (x, -g), fontsize=6, ha="center", xytext=(0, -11),
                        textcoords="offset points")
    ax.set_yticks([-g for g in range(generations)], [f"gen {g}" for g in range(generations)])
    ax.set_xticks([])
    ax.set_ylim(-generations + 0.4, 0.6)
    ax.set_title(f"Lineage ({len(nodes)} designs)")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    fig.savefig(path)
    return path


def leaderboard_rows(nodes: list[Node], top: int = 20) -> list[dict[str, Any]]:
    names = {n.id: n.name for n in nodes}
    return [
        {"rank": i + 1, "name": n.name, "id": n.id, "fitness": n.fitness, "confidence": n.confidence,
         "quadrant": n.quadrant.replace("_", " "), "operation": n.operation,
         "parents": ", ".join(names.get(p, p) for p in n.parents), "rungs": ", ".join(n.rungs),
         "metrics": ", ".join(f"{k}={v:.4g}" for k, v in sorted(n.metrics.items()))}
        for i, n in enumerate(ranked(nodes)[:top])
    ]


def write_html(nodes: list[Node], out_dir: Path, experiment: str, top: int = 20) -> Path:
    rows = leaderboard_rows(nodes, top)
    columns = ["rank", "name", "id", "fitness", "confidence", "quadrant", "operation", "parents",
               "rungs", "metrics"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(
            f"<td>{html.escape(f'{r[c]:.4f}' if isinstance(r[c], float) else str(r[c]))}</td>"
            for c in columns) + "</tr>"
        for r in rows)
    counts = {state: sum(n.state == state for n in nodes) for state in ("implemented", "verified", "failed")}
    title = f"Genesys report: {experiment}" if experiment else "Genesys report"
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 8px}} th{{background:#eee}} img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{len(nodes)} designs: {sum(n.seed for n in nodes)} seeds, {counts['verified']} verified,
{counts['implemented']} waiting for verification, {counts['failed']} failed.
Generated {datetime.now().isoformat(timespec="seconds")}.</p>
<h2>Leaderboard</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<h2>Fitness over time</h2><img src="{FILES['fitness']}" alt="fitness over time">
<h2>Fitness and confidence</h2><img src="{FILES['quadrants']}" alt="quadrant scatter">
<h2>Lineage</h2><img src="{FILES['lineage']}" alt="lineage tree">
</body></html>
"""
    path = out_dir / FILES["html"]
    path.write_text(page)
    return path


def write_report(designs: Iterable[Any], out_dir: str | Path, experiment: str = "",
                 top: int = 20) -> dict[str, Path]:
    """Write the PNGs and index.html into ``out_dir``; returns {"fitness", "quadrants",
    "lineage", "html"} -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nodes = [to_node(d) for d in designs]
    return {
        "fitness": plot_fitness(nodes, out / FILES["fitness"]),
        "quadrants": plot_quadrants(nodes, out / FILES["quadrants"]),
        "lineage": plot_lineage(nodes, out / FILES["lineage"]),
        "html": write_html(nodes, out, experiment, top),
    }


def fetch_designs(client: Any, experiment: str, page: int = 500) -> list[Any]:
    """Every design of the experiment (basic view) through the SDK, page by page."""
    designs: list[Any] = []
    while True:
        batch = client.list_designs(experiment, limit=page, offset=len(designs))
        designs.extend(batch)
        if len(batch) < page:
            return designs


def fetch_report(client: Any, experiment: str, out_dir: str | Path, top: int = 20) -> dict[str, Path]:
    """Fetch the experiment's designs from the coordinator and write the report."""
    return write_report(fetch_designs(client, experiment), out_dir, experiment, top)

"""Experiment report: PNG plots (fitness over time, fitness/confidence quadrants, lineage
tree, quality against throughput with the Pareto front) and an HTML page showing them with
the leaderboard (scores with their +- standard errors) and the rank correlation of the
designs' scores between rungs (genesys.report_stats).

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

from .report_stats import pareto_front, rung_correlations

QUADRANT_COLORS = {
    "good_confident": "#1b9e77", "good_unconfident": "#7570b3",
    "poor_confident": "#d95f02", "poor_unconfident": "#999999", "unspecified": "#cccccc",
}
OPERATION_MARKERS = {"seed": "*", "mutation": "o", "crossover": "D", "scratch": "s", "unspecified": "o"}
FILES = {"fitness": "fitness.png", "quadrants": "quadrants.png", "lineage": "lineage.png",
         "pareto": "pareto.png", "html": "index.html"}


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
    stderr: dict[str, float] = field(default_factory=dict)  # of those metrics
    label: str = ""  # what changed against the first parent, e.g. gpt+MultiScaleRetention
    fitness_stderr: float = 0.0
    throughput: dict[str, float] = field(default_factory=dict)  # rung -> training tokens/s
    raw: dict = field(default_factory=dict, repr=False)  # the design as a dict

    @property
    def shown_name(self) -> str:
        return self.label or self.name

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
    last = results[-1] if results else {}
    return Node(
        id=design["id"], name=design.get("name") or design["id"],
        parents=list(design.get("parents") or []),
        fitness=float(design.get("fitness") or 0.0), confidence=int(design.get("confidence") or 0),
        quadrant=_enum(design.get("quadrant"), "Quadrant", "QUADRANT_"),
        state=_enum(design.get("state"), "DesignState", "DESIGN_STATE_"),
        operation="seed" if seed else operation, seed=seed,
        created=_time(design.get("created_at")), reported=min(reported) if reported else None,
        rungs=[r["rung"] for r in results],
        metrics={k: float(v) for k, v in (last.get("metrics") or {}).items()},
        stderr={k: float(v) for k, v in (last.get("stderr") or {}).items()},
        label=design.get("label") or "", fitness_stderr=float(design.get("fitness_stderr") or 0.0),
        throughput={r["rung"]: float(r.get("tokens_per_second") or 0.0) for r in results},
        raw=design,
    )


def plus_minus(value: float, stderr: float = 0.0, digits: int = 4) -> str:
    """``0.8123 ± 0.0341`` (one standard error), or the value alone without an error."""
    return f"{value:.{digits}g} ± {stderr:.2g}" if stderr else f"{value:.{digits}g}"


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
        ax.annotate(n.shown_name, (n.confidence + _jitter(n.id), n.fitness), fontsize=7,
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
            ax.annotate(n.shown_name, (x, -g), fontsize=6, ha="center", xytext=(0, -11),
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
    names = {n.id: n.shown_name for n in nodes}
    return [
        {"rank": i + 1, "name": n.shown_name, "id": n.id, "fitness": f"{n.fitness:.4f}"
         + (f" ± {n.fitness_stderr:.4f}" if n.fitness_stderr else ""), "confidence": n.confidence,
         "quadrant": n.quadrant.replace("_", " "), "operation": n.operation,
         "parents": ", ".join(names.get(p, p) for p in n.parents), "rungs": ", ".join(n.rungs),
         "metrics": ", ".join(f"{k}={plus_minus(v, n.stderr.get(k, 0.0))}"
                              for k, v in sorted(n.metrics.items()))}
        for i, n in enumerate(ranked(nodes)[:top])
    ]


def plot_pareto(nodes: list[Node], path: Path, rung: str) -> Path:
    """Fitness against training throughput at `rung`, the Pareto front drawn as a line."""
    fig = _figure(7, 4.5)
    ax = fig.subplots()
    at_rung = [n for n in nodes if rung in n.throughput]
    front = set(pareto_front([n.raw for n in at_rung], rung))
    for on_front, color, label in ((False, "#999999", "dominated"), (True, "#d95f02", "Pareto front")):
        sel = [n for n in at_rung if (n.id in front) == on_front]
        if sel:
            ax.errorbar([n.throughput[rung] for n in sel], [n.fitness for n in sel],
                        yerr=[n.fitness_stderr for n in sel], fmt="o", color=color, label=label,
                        markersize=6, capsize=2, linewidth=0.8)
    edge = sorted((n.throughput[rung], n.fitness, n.shown_name) for n in at_rung if n.id in front)
    if edge:
        ax.plot([x for x, _, _ in edge], [y for _, y, _ in edge], color="#d95f02", linewidth=1)
        for x, y, name in edge:
            ax.annotate(name, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, f"no design verified at {rung or 'any rung'} yet", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel(f"training tokens/s at {rung}")
    ax.set_ylabel("fitness (± 1 standard error)")
    ax.set_title("Quality against throughput")
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def _first_rung(nodes: list[Node]) -> str:
    """The rung most designs were verified at (ties: the first seen)."""
    counts: dict[str, int] = {}
    for n in nodes:
        for rung in n.rungs:
            counts[rung] = counts.get(rung, 0) + 1
    return max(counts, key=lambda r: counts[r]) if counts else ""


def _correlation_table(nodes: list[Node]) -> str:
    rows = rung_correlations([n.raw for n in nodes])
    if not rows:
        return "<p>Not enough designs verified on two rungs yet (at least 4 on both).</p>"
    body = "\n".join(
        f"<tr><td>{html.escape(r.low)} → {html.escape(r.high)}</td><td>{html.escape(r.metric)}</td>"
        f"<td>{r.n}</td><td>{r.rho:.2f}</td><td>[{r.ci_low:.2f}, {r.ci_high:.2f}]</td></tr>"
        for r in rows)
    return ("<table><thead><tr><th>rungs</th><th>metric</th><th>designs</th><th>Spearman</th>"
            f"<th>95% interval</th></tr></thead><tbody>\n{body}\n</tbody></table>")


def write_html(nodes: list[Node], out_dir: Path, experiment: str, top: int = 20) -> Path:
    rows = leaderboard_rows(nodes, top)
    rung = _first_rung(nodes)
    on_front = set(pareto_front([n.raw for n in nodes], rung))
    front = [n.shown_name for n in ranked(nodes) if n.id in on_front]
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
<h2>Does the cheap rung predict the expensive one?</h2>
{_correlation_table(nodes)}
<h2>Quality against throughput at {html.escape(rung or "-")}</h2>
<p>Pareto front (fitness, tokens/s, peak memory): {html.escape(", ".join(front) or "-")}</p>
<img src="{FILES['pareto']}" alt="Pareto front">
</body></html>
"""
    path = out_dir / FILES["html"]
    path.write_text(page)
    return path


def write_report(designs: Iterable[Any], out_dir: str | Path, experiment: str = "",
                 top: int = 20) -> dict[str, Path]:
    """Write the PNGs and index.html into ``out_dir``; returns {"fitness", "quadrants",
    "lineage", "pareto", "html"} -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nodes = [to_node(d) for d in designs]
    return {
        "fitness": plot_fitness(nodes, out / FILES["fitness"]),
        "quadrants": plot_quadrants(nodes, out / FILES["quadrants"]),
        "lineage": plot_lineage(nodes, out / FILES["lineage"]),
        "pareto": plot_pareto(nodes, out / FILES["pareto"], _first_rung(nodes)),
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

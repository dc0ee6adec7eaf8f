"""What each page shows, read from the coordinator through the SDK and shaped as plain
dicts and lists for the templates (and the JSON endpoints). No HTTP here."""

from __future__ import annotations

import difflib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from genesys import report_stats
from genesys.cli.coordinator_opts import enum_name
from genesys.client.coordinator import Coordinator
from genesys.client.llm import LLM, LLMError
from genesys.report import QUADRANT_COLORS, layers, to_node
from genesys.v1 import budget_pb2, design_pb2, experiment_pb2, job_pb2
from google.protobuf.json_format import MessageToDict

from . import plots

PAGE = 1000  # ListDesigns' largest page
FULL_PAGE = 50  # designs with their LLM traces: a page stays far below the message limit
LEADERBOARD_LIMIT = 10_000
JOBS_LIMIT = 500
D, J = design_pb2, job_pb2


def design_state(value: int) -> str:
    return enum_name(D.DesignState, value, "DESIGN_STATE_")


def quadrant(value: int) -> str:
    return enum_name(D.Quadrant, value, "QUADRANT_")


def job_state(value: int) -> str:
    return enum_name(J.JobState, value, "JOB_STATE_")


def job_kind(value: int) -> str:
    return enum_name(J.JobKind, value, "JOB_KIND_")


def display_name(design: design_pb2.Design) -> str:
    """The readable label when the designer gave one, else the stored name."""
    return design.label or design.name or design.id


def timestamp(message, field: str) -> float | None:
    """Epoch seconds of a Timestamp field, None when unset."""
    return getattr(message, field).ToMicroseconds() / 1e6 if message.HasField(field) else None


def iter_designs(client: Coordinator, experiment: str, full: bool = False
                 ) -> Iterator[design_pb2.Design]:
    """Every design of the experiment in creation order, page by page (full views, with
    their prompts, in small pages: they can be large)."""
    size, offset = (FULL_PAGE if full else PAGE), 0
    while True:
        page = client.list_designs(experiment, limit=size, offset=offset, full=full)
        yield from page
        offset += len(page)
        if len(page) < size:
            return


def all_designs(client: Coordinator, experiment: str) -> list[design_pb2.Design]:
    return list(iter_designs(client, experiment))


def rung_names(exp: experiment_pb2.Experiment) -> list[str]:
    return [r.name for r in exp.config.ladder.rungs]


def summaries(designs: Iterable[design_pb2.Design]) -> list[dict[str, Any]]:
    """The designs as dicts for genesys.report / report_stats, converted once and without
    training curves and trace (converting the curves is most of the cost at 10k designs)."""
    out = []
    for d in designs:
        slim = design_pb2.Design()
        slim.CopyFrom(d)
        slim.ClearField("trace")
        for r in slim.results:
            r.ClearField("train_curve")
            r.ClearField("val_curve")
        out.append(MessageToDict(slim, preserving_proto_field_name=True)
                   | {"display_name": display_name(d)})
    return out


# -- experiments ---------------------------------------------------------------------------


def experiment_row(exp: experiment_pb2.Experiment) -> dict[str, Any]:
    return {"name": exp.name, "description": exp.description,
            "state": enum_name(experiment_pb2.ExperimentState, exp.state, "EXPERIMENT_STATE_"),
            "config_version": exp.config_version, "designs": exp.stats.designs,
            "verified": exp.stats.verified_designs, "queued": exp.stats.queued_jobs,
            "leased": exp.stats.leased_jobs, "created": timestamp(exp, "created_at"),
            "ladder": [{"name": r.name, "budget": r.budget} for r in exp.config.ladder.rungs]}


def ledger_rows(ledger: budget_pb2.BudgetLedger) -> list[dict[str, Any]]:
    return [{"rung": r.rung, "total": r.total, "released": r.released, "reserved": r.reserved,
             "committed": r.committed, "available": r.available,
             "used_pct": round(100 * (r.committed + r.reserved) / r.total) if r.total else 0}
            for r in ledger.rungs]


def worker_row(worker: job_pb2.Worker) -> dict[str, Any]:
    caps = worker.capabilities
    return {"id": worker.id, "name": worker.name,
            "state": enum_name(J.WorkerState, worker.state, "WORKER_STATE_"),
            "roles": [enum_name(J.WorkerRole, r, "WORKER_ROLE_") for r in caps.roles],
            "devices": [f"{d.kind}:{d.name}" if d.name else d.kind for d in caps.devices] or ["cpu"],
            "experiments": list(caps.experiments), "jobs": list(worker.job_ids),
            "last_heartbeat": timestamp(worker, "last_heartbeat"), "version": worker.version}


def experiment_overview(client: Coordinator, name: str) -> dict[str, Any]:
    exp = client.get_experiment(name)
    designs = all_designs(client, name)
    workers = [w for w in client.list_workers()
               if not w.capabilities.experiments or name in w.capabilities.experiments]
    return {"experiment": experiment_row(exp),
            "ledger": ledger_rows(client.get_budget(name).ledger),
            "states": dict(Counter(design_state(d.state) for d in designs)),
            "quadrants": dict(Counter(quadrant(d.quadrant) for d in designs if d.results)),
            "workers": [worker_row(w) for w in workers],
            "plots": experiment_plots(summaries(designs), rung_names(exp))}


def experiment_plots(designs: list[dict[str, Any]], rungs: list[str]) -> dict[str, Any]:
    """The overview plots: fitness over time with the best so far, fitness x confidence by
    quadrant, the Pareto front at the lowest rung, and the rank correlation of each metric
    between rungs (genesys.report_stats, as in the report). `designs`: summaries()."""
    nodes = [to_node(d) for d in designs]
    names = {d["id"]: d["display_name"] for d in designs}
    timed = sorted((n.reported, n.fitness, n.id) for n in nodes if n.verified and n.reported)
    fitness_time = plots.spec(
        [t for t, _, _ in timed],
        [plots.series("fitness", [f for _, f, _ in timed], "#7570b3", points=True, line=False),
         plots.series("best so far", plots.best_so_far([f for _, f, _ in timed]), "#1b9e77")],
        xlabel="first result", ylabel="fitness", time=True,
        links=[i for _, _, i in timed], names=[names[i] for _, _, i in timed])
    verified = sorted((n for n in nodes if n.verified), key=lambda n: (n.fitness, n.confidence))
    quadrants = plots.scatter_by_group(
        [n.fitness for n in verified], [n.confidence for n in verified],
        [n.quadrant for n in verified], QUADRANT_COLORS, xlabel="fitness", ylabel="confidence",
        links=[n.id for n in verified], names=[names[n.id] for n in verified])
    correlations = [c.to_dict() for c in report_stats.rung_correlations(designs, rungs)]
    return {"fitness_time": fitness_time, "quadrants": quadrants,
            "pareto": pareto(designs, rungs[0] if rungs else "", names),
            "rank_correlation": correlations, "rungs": len(rungs)}


def pareto(designs: list[dict[str, Any]], rung: str, names: dict[str, str]
           ) -> dict[str, Any] | None:
    """Fitness against training throughput at `rung`, the Pareto front (fitness,
    throughput, peak memory) marked."""
    points = sorted((objective[1], objective[0], d["id"]) for d in designs
                    if (objective := report_stats.objectives(d, rung)) is not None
                    and objective[1] > 0)
    front = set(report_stats.pareto_front(designs, rung))
    return plots.spec(
        [x for x, _, _ in points],
        [plots.series("designs", [y for _, y, _ in points], "#999999", points=True, line=False),
         plots.series("Pareto front", [y if i in front else None for _, y, i in points],
                      "#d95f02", points=True)],
        xlabel=f"training tokens/s at {rung}", ylabel="fitness",
        links=[i for _, _, i in points], names=[names[i] for _, _, i in points])


class InvalidInput(ValueError):
    """A request names something that cannot exist (the page says so, HTTP 400)."""


# -- leaderboard ---------------------------------------------------------------------------


def leaderboard_page(client: Coordinator, name: str, rung: str = "") -> dict[str, Any]:
    """The page's frame; its rows come from `leaderboard` as JSON (drawn in the browser)."""
    exp = client.get_experiment(name)
    if rung and rung not in rung_names(exp):
        raise InvalidInput(f"{rung!r} is not a rung of {name!r} (rungs: {', '.join(rung_names(exp))})")
    return {"experiment": experiment_row(exp), "rung": rung, "rungs": rung_names(exp)}


def leaderboard(client: Coordinator, name: str, rung: str = "") -> dict[str, Any]:
    """The coordinator's ranking (overall fitness, or the score at one rung), each row with
    its interval: fitness +- fitness_stderr, or each metric +- its stderr at the rung."""
    exp = client.get_experiment(name)
    entries = client.leaderboard(name, rung, LEADERBOARD_LIMIT)
    designs = {d.id: d for d in all_designs(client, name)}
    rows, metric_names = [], set()
    for e in entries:
        d = designs.get(e.design_id)
        result = None
        if d is not None:
            results = [r for r in d.results if r.rung == rung] if rung else list(d.results)
            result = results[-1] if results else None
        metrics = dict(result.metrics) if result is not None else dict(e.metrics)
        stderr = dict(result.stderr) if result is not None else {}
        metric_names.update(metrics)
        rows.append({"rank": e.rank, "id": e.design_id, "name": display_name(d) if d else e.name,
                     "stored_name": e.name, "fitness": e.fitness,
                     "fitness_stderr": d.fitness_stderr if d else 0.0, "score": e.score,
                     "confidence": e.confidence, "quadrant": quadrant(e.quadrant),
                     "seed": bool(d and d.seed), "rung": result.rung if result else "",
                     "metrics": metrics, "stderr": stderr})
    return {"experiment": experiment_row(exp), "rung": rung, "rungs": rung_names(exp),
            "metric_names": sorted(metric_names), "rows": rows}


# -- one design ----------------------------------------------------------------------------


def unit_tree(tree: design_pb2.GauTree) -> dict[str, Any] | None:
    """The units as a nested tree from the root; a declared child without code is marked
    planned (composed as a placeholder)."""
    units = {u.name: u for u in tree.units}

    def node(name: str, desc: str, seen: frozenset[str]) -> dict[str, Any]:
        unit = units.get(name)
        if unit is None or name in seen:
            return {"name": name, "desc": desc, "planned": unit is None, "children": []}
        return {"name": name, "desc": unit.desc or desc, "planned": False,
                "children": [node(c.name, c.desc, seen | {name}) for c in unit.children]}

    return node(tree.root, "", frozenset()) if tree.root else None


def source_diff(parent_source: str, source: str, parent: str, child: str) -> str:
    return "\n".join(difflib.unified_diff(parent_source.splitlines(), source.splitlines(),
                                          fromfile=parent, tofile=child, lineterm=""))


def check_report(raw: str) -> dict[str, Any] | None:
    """The checker's report (CheckReport.to_json) or None when not recorded; text that is
    not a JSON object is shown as it is."""
    if not raw:
        return None
    try:
        report = json.loads(raw)
    except json.JSONDecodeError:
        return {"raw": raw}
    return report if isinstance(report, dict) else {"raw": raw}


def curve(points: Iterable[design_pb2.CurvePoint]) -> dict[str, list]:
    pts = list(points)
    return {"step": [p.step for p in pts], "loss": [p.loss for p in pts],
            "tokens": [p.tokens for p in pts]}


def result_row(result: design_pb2.RungResult) -> dict[str, Any]:
    train, val = curve(result.train_curve), curve(result.val_curve)
    steps = sorted(set(train["step"]) | set(val["step"]))
    train_at = dict(zip(train["step"], train["loss"], strict=True))
    val_at = dict(zip(val["step"], val["loss"], strict=True))
    return {"rung": result.rung, "job_id": result.job_id, "worker_id": result.worker_id,
            "metrics": sorted((k, v, result.stderr.get(k)) for k, v in result.metrics.items()),
            "tokens_trained": result.tokens_trained, "wall_seconds": result.wall_seconds,
            "tokens_per_second": result.tokens_per_second,
            "peak_memory_bytes": result.peak_memory_bytes, "training_seed": result.training_seed,
            "repeats": result.repeats, "reported": timestamp(result, "reported_at"),
            "curves": plots.spec(steps, [
                plots.series("train loss", [train_at.get(s) for s in steps], "#1b9e77"),
                plots.series("validation loss", [val_at.get(s) for s in steps], "#d95f02",
                             points=True)], xlabel="step", ylabel="loss")}


def prompt_row(p: design_pb2.PromptRecord) -> dict[str, Any]:
    return {"role": p.role, "model": p.model, "stage": p.stage, "attempt": p.attempt,
            "unit": p.unit, "prompt_tokens": p.prompt_tokens,
            "completion_tokens": p.completion_tokens, "latency": p.latency_seconds,
            "prompt": p.prompt, "response": p.response}


def design_detail(client: Coordinator, design_id: str) -> dict[str, Any]:
    d = client.get_design(design_id, full=True)
    exp = client.get_experiment(d.experiment)
    parents = []
    for pid in d.parents:
        p = client.get_design(pid, full=True)
        parents.append({"id": p.id, "name": display_name(p), "fitness": p.fitness,
                        "diff": source_diff(p.source, d.source, display_name(p), display_name(d))})
    children = [{"id": c.id, "name": display_name(c), "fitness": c.fitness,
                 "state": design_state(c.state)}
                for c in client.list_designs(d.experiment, parent=d.id, limit=PAGE)]
    t = d.trace
    metadata = json.loads(t.metadata_json) if t.metadata_json else None
    return {"id": d.id, "name": display_name(d), "stored_name": d.name, "label": d.label,
            "experiment": experiment_row(exp), "digest": d.digest, "fingerprint": d.fingerprint,
            "state": design_state(d.state), "quadrant": quadrant(d.quadrant), "seed": d.seed,
            "fitness": d.fitness, "fitness_stderr": d.fitness_stderr, "confidence": d.confidence,
            "created": timestamp(d, "created_at"), "submitted_by": d.submitted_by,
            "job_id": d.job_id, "source": d.source, "unit_tree": unit_tree(d.tree),
            "parents": parents, "children": children,
            "trace": {"operation": enum_name(D.DesignOperation, t.operation, "DESIGN_OPERATION_"),
                      "designer": t.designer, "agent": t.agent, "attempts": t.attempts,
                      "proposal": t.proposal, "review": t.review, "rating": t.review_rating,
                      "notes": list(t.notes), "prompt_tokens": t.prompt_tokens,
                      "completion_tokens": t.completion_tokens,
                      "abandoned_reason": t.abandoned_reason,
                      "metadata": json.dumps(metadata, indent=2) if metadata else "",
                      "prompts": [prompt_row(p) for p in t.prompts]},
            "check": check_report(t.check_report_json),
            "results": [result_row(r) for r in d.results]}


# -- lineage graph -------------------------------------------------------------------------


def fitness_color(value: float, low: float, high: float) -> str:
    """A colour from dark blue (lowest fitness) through teal to yellow (highest)."""
    f = 0.5 if high <= low else (value - low) / (high - low)
    stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    pos = min(max(f, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    a, b, t = stops[i], stops[i + 1], pos - i
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def lineage_graph(designs: list[design_pb2.Design]) -> dict[str, Any]:
    """Nodes placed as in the report's lineage plot (genesys.report.layers: generation, then
    next to their parents), coloured by fitness (unverified: grey); edges parent -> child."""
    nodes = [to_node(d) for d in summaries(designs)]
    by_id = {d.id: d for d in designs}
    place = layers(nodes)
    fitness = [n.fitness for n in nodes if n.verified]
    low, high = (min(fitness), max(fitness)) if fitness else (0.0, 0.0)
    out = [{"id": n.id, "name": display_name(by_id[n.id]), "fitness": n.fitness,
            "verified": n.verified, "state": n.state, "quadrant": n.quadrant,
            "generation": place[n.id][0], "x": place[n.id][0] * 160, "y": place[n.id][1] * 28,
            "color": fitness_color(n.fitness, low, high) if n.verified else "#bbbbbb"}
           for n in nodes]
    edges = [[p, n.id] for n in nodes for p in n.parents if p in by_id]
    return {"nodes": out, "edges": edges, "fitness_range": [low, high]}


# -- jobs, workers, budget, LLM usage ------------------------------------------------------


def fault(job: job_pb2.Job) -> str:
    """Whose fault the job's last failure was: the coordinator marks infrastructure failures
    (which never fail a design) by prefixing the error; other failures are the design's."""
    if job.error.startswith("infrastructure:"):
        return "infrastructure"
    return "design" if job.state == J.JOB_STATE_FAILED else ""


def job_row(job: job_pb2.Job, names: dict[str, str]) -> dict[str, Any]:
    return {"id": job.id, "kind": job_kind(job.kind), "state": job_state(job.state),
            "design_id": job.design_id, "design": names.get(job.design_id, job.design_id),
            "rung": job.rung, "attempt": job.attempt, "max_attempts": job.max_attempts,
            "worker_id": job.worker_id, "error": job.error, "fault": fault(job),
            "cancel_requested": job.cancel_requested,
            "created": timestamp(job, "created_at"), "updated": timestamp(job, "updated_at")}


def jobs_view(client: Coordinator, name: str) -> dict[str, Any]:
    exp = client.get_experiment(name)
    names = {d.id: display_name(d) for d in all_designs(client, name)}
    def rows(state: str, limit: int) -> list[dict[str, Any]]:
        return [job_row(j, names) for j in client.list_jobs(name, state=state, limit=limit)]

    recent = [j for j in rows("", JOBS_LIMIT) if j["state"] not in ("leased", "queued")]
    workers = {w.id: worker_row(w) for w in client.list_workers(include_dead=True)}
    return {"experiment": experiment_row(exp),
            "running": rows("leased", 10_000),  # every running job, however many finished since
            "queued": rows("queued", JOBS_LIMIT), "history": recent,
            "workers": sorted(workers.values(), key=lambda w: (w["state"] != "alive", w["name"]))}


def budget_view(client: Coordinator, name: str, entries: int = 100_000) -> dict[str, Any]:
    exp = client.get_experiment(name)
    reply = client.get_budget(name, entries=entries)
    series, rows = ledger_history(reply.entries)
    colors = {"committed": "#1b9e77", "reserved": "#7570b3", "total": "#999999"}
    charts = {rung: plots.spec(s["x"], [plots.series(k, s[k], c, dash=k == "total")
                                        for k, c in colors.items()],
                               xlabel="time", ylabel="designs", time=True)
              for rung, s in series.items()}
    return {"experiment": experiment_row(exp), "ledger": ledger_rows(reply.ledger),
            "charts": charts, "entries": rows[::-1][:200], "entry_count": len(rows)}


def ledger_history(entries: Iterable[budget_pb2.LedgerEntry]
                   ) -> tuple[dict[str, dict[str, list]], list[dict[str, Any]]]:
    """Per rung, total / reserved / committed after each ledger entry, replayed oldest first
    (the coordinator lists entries newest first), and the entries as rows, oldest first."""
    level: dict[str, dict[str, int]] = {}
    series: dict[str, dict[str, list]] = {}
    rows = []
    for e in reversed(list(entries)):
        op = enum_name(budget_pb2.LedgerOp, e.op, "LEDGER_OP_")
        now = level.setdefault(e.rung, {"total": 0, "reserved": 0, "committed": 0})
        if op == "set":
            now["total"] = e.amount
        elif op == "reserve":
            now["reserved"] += e.amount
        elif op in ("commit", "refund"):
            now["reserved"] = max(0, now["reserved"] - e.amount)
            now["committed"] += e.amount if op == "commit" else 0
        s = series.setdefault(e.rung, {"x": [], "committed": [], "reserved": [], "total": []})
        s["x"].append(e.time.ToMicroseconds() / 1e6)
        for key in ("committed", "reserved", "total"):
            s[key].append(now[key])
        rows.append({"time": s["x"][-1], "rung": e.rung, "op": op, "amount": e.amount,
                     "job_id": e.job_id})
    return series, rows


def llm_usage(designs: Iterable[design_pb2.Design]) -> dict[str, Any]:
    """Tokens and calls per role, per model and per design, from the designs' traces (the
    per-call records when present, else the trace totals)."""
    per_role: dict[str, Counter] = defaultdict(Counter)
    per_model: dict[str, Counter] = defaultdict(Counter)
    per_design = []
    for d in designs:
        t = d.trace
        prompt_tokens = t.prompt_tokens or sum(p.prompt_tokens for p in t.prompts)
        completion_tokens = t.completion_tokens or sum(p.completion_tokens for p in t.prompts)
        for p in t.prompts:
            for bucket in (per_role[p.role or "unknown"], per_model[p.model or "unknown"]):
                bucket.update(calls=1, prompt_tokens=p.prompt_tokens,
                              completion_tokens=p.completion_tokens)
                bucket["latency_ms"] += round(p.latency_seconds * 1000)
        if prompt_tokens or completion_tokens or t.prompts:
            per_design.append({"id": d.id, "name": display_name(d), "calls": len(t.prompts),
                               "prompt_tokens": prompt_tokens,
                               "completion_tokens": completion_tokens})
    per_design.sort(key=lambda r: -(r["prompt_tokens"] + r["completion_tokens"]))
    return {"roles": {k: dict(v) for k, v in sorted(per_role.items())},
            "models": {k: dict(v) for k, v in sorted(per_model.items())},
            "designs": per_design}


def gateway_usage(llm: LLM | None, experiment: str) -> dict[str, Any] | None:
    """The LLM gateway's token accounting for the experiment, per caller and model (None
    when no gateway is configured; an unreachable one is said, not raised)."""
    if llm is None:
        return None
    try:
        records = llm.usage(experiment=experiment, timeout=10)
    except LLMError as e:
        return {"address": llm.address, "records": [],
                "error": f"the gateway at {llm.address} did not answer: {e.code.name} {e}"}
    return {"address": llm.address, "error": "", "records": [
        {"caller": r.caller, "model": r.model, "requests": r.requests, "errors": r.errors,
         "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens}
        for r in sorted(records, key=lambda r: (r.caller, r.model))]}

"""The DESIGN-job entry point of the LLM designers (contract: designer/llm/__init__.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from genesys.client.llm import LLM, LLMError
from genesys.design import Design

from ..job import Check, default_check, library_of, load_entries
from ..operators import config_changes, make_label
from .context import DesignContext
from .direct import run_direct
from .edit import run_edit
from .implement import run_pipeline
from .journal import Journal
from .models import ModelChooser
from .session import Abandoned, Session
from .settings import DesignerSettings
from .trace import Trace

Emit = Callable[[dict], None]
MODES: dict[str, Callable[[DesignContext], Design]] = {
    "llm": run_pipeline, "llm-direct": run_direct, "llm-edit": run_edit}


def _experiment_tokens(llm: LLM, experiment: str, settings: DesignerSettings) -> int:
    if not settings.max_tokens_per_experiment or not experiment:
        return 0
    records = llm.usage(experiment=experiment)
    return sum(r.prompt_tokens + r.completion_tokens for r in records)


def _context(payload: dict, emit: Emit, check: Check, llm: LLM, knowledge: Any,
             rejected: list[dict]) -> DesignContext:
    designer = payload.get("designer") or "llm"
    operation = payload.get("operation") or "mutation"
    try:
        settings = DesignerSettings.from_dict(payload.get("llm"))
    except ValueError as exc:  # the experiment's "llm" settings: running again cannot help
        raise Abandoned(f"bad designer settings: {exc}", "config") from None
    parents = load_entries(payload.get("parents") or [], rejected)
    if operation == "crossover" and len(parents) < 2:
        operation = "mutation"
    if operation != "scratch" and not parents:
        raise Abandoned(f"{operation} needs a parent design")
    results = {entry.get("id", ""): entry.get("results") for entry in payload.get("parents") or []}
    trace = Trace(designer, operation)
    journal = Journal(payload.get("checkpoint"))
    if journal.resumed:
        trace.note(f"resumed from a checkpoint of {len(journal.entries)} journal entries")
    seed = int(payload.get("seed") or 0)
    session = Session(llm, ModelChooser.from_config(payload.get("llm_roles") or [],
                                                    payload.get("model_stats")),
                      journal, trace, settings, emit, seed=seed,
                      experiment_tokens=_experiment_tokens(llm, payload.get("experiment", ""), settings))
    return DesignContext(
        operation=operation, parents=[d for _, d in parents], parent_ids=[i for i, _ in parents],
        library=library_of(payload, parents, rejected), settings=settings, session=session,
        trace=trace, journal=journal, checker=check, emit=emit, seed=seed,
        experiment=payload.get("experiment", ""), job_id=str(payload.get("job_id") or ""),
        known=set(payload.get("known_digests") or []) | {d.digest for _, d in parents},
        results=[results.get(i) or {} for i, _ in parents],
        siblings=list(payload.get("siblings") or []), knowledge=knowledge)


def open_knowledge(payload: dict) -> Any:
    """The knowledge service the payload ("knowledge": address), GENESYS_KNOWLEDGE_ADDRESS or
    the knowledge client's own GENESYS_KB_ADDRESS names, else None (the designer then skips
    literature search and says so)."""
    address = (payload.get("knowledge") or os.environ.get("GENESYS_KNOWLEDGE_ADDRESS")
               or os.environ.get("GENESYS_KB_ADDRESS"))
    if not address:
        return None
    from genesys.client.knowledge import Knowledge

    return Knowledge(address=address)


def design_job(payload: dict, emit: Emit | None = None, *, check: Check | None = None,
               llm: LLM | None = None, knowledge: Any = None) -> dict:
    """Run the designer the payload names; see designer/llm/__init__.py for the contract."""
    emit = emit or (lambda event: None)
    designer = payload.get("designer") or "llm"
    if designer not in MODES:
        raise ValueError(f"unknown LLM designer {designer!r} (known: {', '.join(MODES)})")
    check = check or default_check(payload.get("scale") or "check")
    own = llm is None
    llm = llm or LLM(payload.get("gateway") or None, caller=payload.get("caller") or "designer",
                     experiment=payload.get("experiment", ""))
    rejected: list[dict] = []
    ctx: DesignContext | None = None
    try:
        ctx = _context(payload, emit, check, llm,
                       knowledge if knowledge is not None else open_knowledge(payload), rejected)
        design = MODES[designer](ctx)
    except (Abandoned, LLMError) as exc:
        reason = exc.reason if isinstance(exc, Abandoned) else f"the gateway failed: {exc}"
        kind = exc.kind if isinstance(exc, Abandoned) else "infrastructure"
        trace = ctx.trace if ctx else Trace(designer, payload.get("operation") or "mutation")
        trace.abandoned_reason = reason
        emit({"stage": "abandoned", "message": reason[:500]})
        return {"ok": False, "checked": True, "operation": trace.operation, "parents": [],
                "check": trace.check_report, "rejected": rejected, "error": reason,
                "failure_kind": kind, "trace": _finish(trace, ctx)}
    finally:
        if own:
            llm.close()
    emit({"stage": "done", "fraction": 1.0, "message": f"designed {design.name}"})
    used = ctx.parent_ids[: 2 if ctx.operation == "crossover" else 1]
    label = ctx.trace.metadata["label"] = _label(design, ctx, payload)
    return {"ok": True, "checked": True, "source": design.to_source(), "name": design.name,
            "label": label,
            "digest": design.digest, "parents": used if ctx.operation != "scratch" else [],
            "operation": ctx.operation, "check": ctx.trace.check_report, "rejected": rejected,
            "trace": _finish(ctx.trace, ctx)}


def _label(design: Design, ctx: DesignContext, payload: dict) -> str:
    """What changed against the first parent: ``gpt+NewUnit:n_heads=2`` (new or rewritten
    units, then CONFIG values), extending the parent's own label."""
    if not ctx.parents:
        return make_label(design.root, [])
    parent = ctx.parents[0]
    base = (payload.get("parents") or [{}])[0].get("label") or parent.name
    changed = [f"+{name}" for name in design.subtree()
               if name not in parent.units
               or parent.units[name].canonical_code != design.units[name].canonical_code]
    return make_label(base, changed + config_changes(parent, design))


def _finish(trace: Trace, ctx: DesignContext | None) -> dict:
    if ctx is not None:
        trace.metadata.update({"seed": ctx.seed, "checks": ctx.checks, "llm_calls": ctx.session.calls,
                               "replayed": ctx.journal.replayed,
                               "parent_names": [d.name for d in ctx.parents]})
    return json.loads(json.dumps(trace.to_dict(), default=str))

"""Implementation, one unit at a time, with the checker in the loop.

The planner picks the next unit (the selected unit first; then children the new units
declared; existing units may be reused as they are). The coder writes that one class;
each attempt goes through the format check, the full sandboxed check of the tree with the
new unit (children not written yet are identity placeholders), then the observer, who
rates the code against the proposal. Failures go back to the coder (the checker's message
with line numbers in the unit's own code). A unit that fails every attempt leaves the last
good tree as it was; accepted units are frozen; after ``max_failed_units`` failed units
the design is abandoned.
"""

from __future__ import annotations

from dataclasses import replace

from genesys.design import Design
from genesys.lmade.checker_static import check_source

from ..operators import child_name
from .compose import Composed, UnitError, compose, empty_tree, is_placeholder, remap_lines
from .context import DesignContext
from .parse import parse_code_answer
from .proposal import REVIEW_SCHEMA, Proposal, propose
from .session import Abandoned

CODE_SCHEMA = {"type": "object", "required": ["analysis", "code"], "additionalProperties": False,
               "properties": {"analysis": {"type": "string", "maxLength": 1500},
                              "code": {"type": "string", "maxLength": 12000}}}
MAX_UNITS = 8  # units one design may write (a coder declaring children without end)
NO_FEEDBACK = "The previous attempt did not pass. Write the unit again."
MAX_SHOWN_CODE = 4000  # characters of the last attempt shown again (runaway answers are long)


def _plan_schema(pending: list[str]) -> dict:
    return {"type": "object", "required": ["unit", "reason"], "additionalProperties": False,
            "properties": {"unit": {"type": "string", "enum": pending},
                           "reason": {"type": "string", "maxLength": 500}}}


def _next_unit(ctx: DesignContext, proposal: Proposal, tree: Design, pending: list[str],
               done: list[str]) -> str:
    if len(pending) == 1:
        return pending[0]
    answer = ctx.session.ask("planner", "plan", {"proposal": proposal, "tree": tree,
                                                 "pending": pending, "done": done},
                             _plan_schema(pending))
    ctx.session.credit(answer, True)
    return answer.value["unit"]


def _declaration(tree: Design, unit: str):
    """How the unit's parent declares it (inputs, outputs, description), if it has one."""
    for parent in tree.units.values():
        for decl in parent.children:
            if decl.name == unit:
                return decl
    return None


def _retry(ctx: DesignContext, answer, message: str) -> dict:
    """What the coder sees next time: its code and why it failed (without checker feedback,
    the ablation, only that it failed)."""
    ctx.session.credit(answer, False)
    feedback = message[:2500] if ctx.settings.checker_feedback else NO_FEEDBACK
    return {"code": str(answer.value.get("code", ""))[:MAX_SHOWN_CODE], "feedback": feedback}


def _attempt(ctx: DesignContext, proposal: Proposal, tree: Design, unit: str, name: str,
             attempt: int, last: dict) -> tuple[Composed | None, dict]:
    """(the composed tree, {}) when this attempt passed; (None, {"code", "feedback"}) otherwise."""
    current = tree.units.get(unit)
    answer = ctx.session.ask("coder", "implement", {
        "proposal": proposal, "tree": tree, "unit": unit, "last": last,
        "code": current.code if current is not None and not is_placeholder(tree, unit) else "",
        "declaration": _declaration(tree, unit),
        "reusable": [n for n in tree.units if n != unit and not is_placeholder(tree, n)],
        "other": ctx.parents[1] if ctx.operation == "crossover" else None,
    }, CODE_SCHEMA, attempt=attempt, unit=unit, parse=parse_code_answer)
    ctx.trace.attempts += 1
    try:
        composed = compose(tree, unit, answer.value["code"], name)
    except UnitError as exc:
        return None, _retry(ctx, answer, f"format check failed: {exc}")
    static = check_source(composed.design.to_source(), name)
    if not static.passed:
        message = remap_lines("; ".join(static.errors), composed.first_line, composed.lines, unit)
        return None, _retry(ctx, answer, f"format check failed: {message}")
    result = ctx.check(composed.design)
    if not result["ok"]:
        message = remap_lines(result["failure"], composed.first_line, composed.lines, unit)
        ctx.trace.note(f"{unit} attempt {attempt}: checker: {message[:300]}")
        return None, _retry(ctx, answer, f"the checker failed the design: {message}")
    review = ctx.session.ask("observer", "observe", {
        "proposal": proposal, "unit": unit, "code": composed.design.units[unit].code,
        "placeholders": composed.missing}, REVIEW_SCHEMA, attempt=attempt, unit=unit)
    ctx.session.credit(review, True)
    if review.value["rating"] < ctx.settings.observer_threshold:
        ctx.session.credit(answer, False)
        ctx.trace.note(f"{unit} attempt {attempt}: observer rated {review.value['rating']}")
        return None, {"code": answer.value["code"][:MAX_SHOWN_CODE], "feedback": (
            f"The code passed the checker, but the reviewer rated it "
            f"{review.value['rating']}/5: {review.value['review']}")}
    ctx.session.credit(answer, True)
    return composed, {}


def _write_unit(ctx: DesignContext, proposal: Proposal, tree: Design, unit: str,
                name: str) -> Composed | None:
    last: dict = {}
    for attempt in range(1, ctx.settings.unit_attempts + 1):
        ctx.emit({"stage": "implement", "unit": unit, "attempt": attempt,
                  "message": f"writing {unit} (attempt {attempt})"})
        composed, last = _attempt(ctx, proposal, tree, unit, name, attempt, last)
        if composed is not None:
            return composed
    return None


def start_tree(ctx: DesignContext, proposal: Proposal) -> Design:
    if ctx.operation == "scratch":
        return empty_tree(proposal.unit, f"{proposal.unit.lower()}-scratch")
    return ctx.parents[0]


def implement(ctx: DesignContext, proposal: Proposal) -> Design:
    tree = start_tree(ctx, proposal)
    name = tree.name
    pending, done, failures = [proposal.unit], [], 0
    while pending:
        unit = _next_unit(ctx, proposal, tree, pending, done)
        composed = _write_unit(ctx, proposal, tree, unit, name)
        if composed is None:
            failures += 1
            ctx.trace.note(f"unit {unit} failed {ctx.settings.unit_attempts} attempts; "
                           f"the last good tree is restored ({failures} failed unit(s))")
            if failures >= ctx.settings.max_failed_units:
                raise Abandoned(f"{failures} units failed to implement (last: {unit})")
            continue
        tree = composed.design
        done.append(unit)
        pending = [u for u in pending if u != unit]
        pending += [c for c in composed.missing if c not in pending and c not in done]
        ctx.trace.note(f"unit {unit} accepted" + (f"; placeholders for {', '.join(composed.missing)}"
                                                   if composed.missing else ""))
        if len(done) + len(pending) > MAX_UNITS:
            raise Abandoned(f"the design needs more than {MAX_UNITS} new units")
    tree = replace(tree, name=child_name(ctx.parents[0].name if ctx.parents else tree.root.lower(),
                                         ctx.operation, tree))
    if tree.digest in ctx.known:
        raise Abandoned("the implemented design repeats a known design")
    return tree


def run_pipeline(ctx: DesignContext) -> Design:
    proposal = propose(ctx)
    ctx.emit({"stage": "proposal", "message": f"accepted: {proposal.title} "
              f"(rating {proposal.rating:g}); implementing {proposal.unit}"})
    return implement(ctx, proposal)

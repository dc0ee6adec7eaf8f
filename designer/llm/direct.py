"""Direct prompting, the paper's baseline: the coder writes the whole design file in one go,
with the same checker feedback loop as the unit-by-unit pipeline."""

from __future__ import annotations

from dataclasses import replace

from genesys.design import Design
from genesys.lmade.checker_static import check_source

from ..operators import child_name
from .context import DesignContext
from .implement import CODE_SCHEMA, NO_FEEDBACK
from .parse import parse_code_answer
from .session import Abandoned

FILE_SCHEMA = {**CODE_SCHEMA, "properties": {**CODE_SCHEMA["properties"],
                                             "code": {"type": "string", "maxLength": 30000}}}


def run_direct(ctx: DesignContext) -> Design:
    feedback = ""
    base = ctx.parents[0].name if ctx.parents else "scratch"
    for attempt in range(1, ctx.settings.direct_attempts + 1):
        answer = ctx.session.ask("coder", "direct", {
            "operation": ctx.operation, "parents": ctx.parents, "feedback": feedback,
            "metrics": [ctx.parent_metrics(i) for i in range(len(ctx.parents))]},
            FILE_SCHEMA, attempt=attempt, parse=parse_code_answer)
        ctx.trace.attempts = attempt
        static = check_source(answer.value["code"], base)
        if not static.passed:
            ctx.session.credit(answer, False)
            feedback = f"format check failed: {'; '.join(static.errors)}"
        elif static.design.digest in ctx.known:
            ctx.session.credit(answer, False)
            feedback = "the design repeats a known design (its parent, or an earlier design)"
        else:
            design = replace(static.design, name=child_name(base, ctx.operation, static.design))
            result = ctx.check(design)
            if result["ok"]:
                ctx.session.credit(answer, True)
                ctx.trace.proposal = answer.value.get("analysis", "")
                return design
            ctx.session.credit(answer, False)
            feedback = f"the checker failed the design: {result['failure']}"
        ctx.trace.note(f"direct attempt {attempt}: {feedback[:300]}")
        if not ctx.settings.checker_feedback:
            feedback = NO_FEEDBACK
    raise Abandoned(f"no design file passed the checker in {ctx.settings.direct_attempts} attempts")

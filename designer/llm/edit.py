"""Edit mode: the LLM picks one of the operations the recombination designer can apply.

The choice goes through a JSON schema whose enum lists only valid operations (replace a
unit subtree by a compatible one of a library design, move one hyperparameter to one of
its sensible values), so even a 135M model can only answer with something that applies;
it writes the rationale. A child that fails the checker or repeats a known design is
reported back and its operation struck from the next choice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from genesys.design import Design

from ..operators import child_name, donor_slots
from ..perturb import move_value, tunables
from ..surgery import transplant
from .context import DesignContext
from .session import Abandoned

VALUE_DRAWS = 12  # seeded draws of each hyperparameter's move, deduplicated


@dataclass(frozen=True)
class EditOption:
    label: str  # what the model chooses (an enum value) and what the trace shows
    kind: str  # swap | config
    apply: Callable[[], tuple[Design, list[str]]]


def _swaps(target: Design, donors: list[Design]) -> list[EditOption]:
    options: dict[str, EditOption] = {}
    for slot, donor, theirs in donor_slots(target, donors):
        label = f"replace {slot.unit} with {theirs.unit} of {donor.name}"
        options.setdefault(label, EditOption(
            label, "swap", lambda s=slot.unit, d=donor, u=theirs.unit: transplant(target, s, d, u)))
    return list(options.values())


def _shown(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def _config_moves(target: Design, source: Design | None) -> list[EditOption]:
    """Each tunable value's candidate moves, or (crossover) the other parent's values."""
    options = []
    values = tunables(target)
    for key, old in sorted(values.items()):
        if source is not None:
            theirs = tunables(source)
            news = [theirs[key]] if key in theirs and theirs[key] != old else []
        else:
            news = sorted({move_value(key, old, random.Random(i)) for i in range(VALUE_DRAWS)} - {old})
        for new in news:
            def apply(k=key, v=new, o=old) -> tuple[Design, list[str]]:
                return replace(target, config={**target.config, k: v}), [f"config {k}: {o!r} -> {v!r}"]
            options.append(EditOption(f"set {key} from {_shown(old)} to {_shown(new)}", "config", apply))
    return options


def edit_options(operation: str, parents: list[Design], library: list[Design],
                 rng: random.Random, limit: int) -> list[EditOption]:
    """At most ``limit`` valid operations on the first parent, swaps and moves mixed; a
    crossover takes units and values from the second parent only."""
    target = parents[0]
    if operation == "crossover" and len(parents) > 1:
        swaps = _swaps(target, [parents[1]])
        moves = _config_moves(target, parents[1])
    else:
        swaps = _swaps(target, [d for d in library if d.digest != target.digest])
        moves = _config_moves(target, None)
    half = max(1, limit // 2)
    picked_swaps = rng.sample(swaps, min(len(swaps), max(half, limit - len(moves))))
    picked_moves = rng.sample(moves, min(len(moves), limit - len(picked_swaps)))
    return picked_swaps + picked_moves


def schema(labels: list[str]) -> dict:
    return {"type": "object", "additionalProperties": False,
            "required": ["operation", "rationale"],
            "properties": {"operation": {"type": "string", "enum": labels},
                           "rationale": {"type": "string", "maxLength": 600}}}


def run_edit(ctx: DesignContext) -> Design:
    """The first checked, unseen child of an operation the model chose."""
    if not ctx.parents:
        raise Abandoned("edit mode needs a parent design (scratch is not an edit)")
    parent = ctx.parents[0]
    options = edit_options(ctx.operation, ctx.parents, ctx.library, random.Random(ctx.seed),
                           ctx.settings.max_edit_options)
    feedback: list[dict] = []
    for attempt in range(1, ctx.settings.edit_attempts + 1):
        tried = {f["operation"] for f in feedback}
        left = [o for o in options if o.label not in tried]
        if not left:
            break
        answer = ctx.session.ask("proposer", "edit", {
            "parent": parent, "metrics": ctx.parent_metrics(0), "options": left,
            "feedback": feedback, "operation": ctx.operation,
            "other": ctx.parents[1] if len(ctx.parents) > 1 else None,
        }, schema([o.label for o in left]), attempt=attempt)
        option = next(o for o in left if o.label == answer.value["operation"])
        design, notes = option.apply()
        design = replace(design, name=child_name(parent.name, ctx.operation, design))
        ctx.trace.proposal = f"{option.label}\n\n{answer.value['rationale']}"
        if design.digest in ctx.known:
            feedback.append({"operation": option.label, "result": "the child repeats a known design"})
            ctx.session.credit(answer, False)
            continue
        ctx.known.add(design.digest)
        report = ctx.check(design)
        ctx.trace.attempts = attempt
        if report["ok"]:
            ctx.session.credit(answer, True)
            ctx.trace.notes.extend([f"edit: {option.label}", *notes])
            return design
        ctx.session.credit(answer, False)
        feedback.append({"operation": option.label, "result": report["failure"][:600]})
    raise Abandoned(f"no edit passed the checker after {len(feedback)} operation(s): "
                    + "; ".join(f"{f['operation']}: {f['result'][:120]}" for f in feedback[-3:]))

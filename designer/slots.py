"""Where a unit sits in its tree and what it does there: the basis of compatibility.

A *slot* is a non-root unit together with how its parent uses it: the inputs the parent
declares or passes at the call site, the outputs it declares, and the unit's role (mixer,
mlp, norm, positional, or other) guessed from its name, docstring and declaration. Two
units are compatible when their roles and input/output signatures agree, so one can take
the other's place without changing the parent.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from genesys.design import Design

# Checked in order; the first match wins. Names are matched before descriptions.
ROLE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("positional", r"rotary|rope|posemb|position"),
    ("norm", r"norm(?!al)|normali[sz]"),
    ("mlp", r"mlp|ffn|feed.?forward|channel.?mix|glu"),
    ("mixer", r"attn|attention|mha|retention|ssm|mamba|time.?mix|ttt|mixer|conv|recurren|token.?mix"),
)


@dataclass(frozen=True)
class Slot:
    unit: str
    parent: str
    role: str
    inputs: frozenset[str]
    outputs: frozenset[str]

    @property
    def signature(self) -> tuple[str, frozenset[str], frozenset[str]]:
        return self.role, self.inputs, self.outputs


def role_of(name: str, *descriptions: str) -> str:
    """The role a unit plays, from its class name first, then its descriptions."""
    for text in (name, *descriptions):
        first_line = (text.strip().splitlines() or [""])[0].lower()
        for role, pattern in ROLE_PATTERNS:
            if re.search(pattern, first_line):
                return role
    return "other"


def call_kwargs(parent_code: str, child: str) -> set[str]:
    """Keyword names the parent passes when calling an attribute holding ``child``."""
    tree = ast.parse(parent_code)
    attrs = {
        t.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name) and node.value.func.id == child
        for t in node.targets
        if isinstance(t, ast.Attribute)
    }
    return {
        kw.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in attrs
        for kw in node.keywords
        if kw.arg is not None
    }


def slots(design: Design) -> list[Slot]:
    """Every non-root unit of the design's tree with its first parent's view of it."""
    found: dict[str, Slot] = {}
    for parent in design.subtree():
        for decl in design.units[parent].children:
            if decl.name in found or decl.name == design.root or decl.name not in design.units:
                continue
            unit = design.units[decl.name]
            inputs = {"X", *decl.inputs, *call_kwargs(design.units[parent].code, decl.name)}
            found[decl.name] = Slot(
                unit=decl.name,
                parent=parent,
                role=role_of(decl.name, unit.desc, decl.desc),
                inputs=frozenset(i.lstrip("*") for i in inputs),
                outputs=frozenset({"Y", *decl.outputs}),
            )
    return list(found.values())


def compatible(a: Slot, b: Slot) -> bool:
    """Whether the unit in slot ``b`` may replace the unit in slot ``a``.

    Units of role "other" have no recognisable job, so only same-named ones (the same
    unit as evolved in two designs) are interchangeable.
    """
    if a.signature != b.signature:
        return False
    return a.role != "other" or a.unit.lower() == b.unit.lower()

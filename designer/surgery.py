"""Tree surgery on designs: rename unit classes and transplant unit subtrees between designs.

Works on source text and ASTs only (no torch, nothing executed), so it is safe on
untrusted designs in any process.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import replace

from genesys.design import Design, Unit, load_design


class _Renamer(ast.NodeTransformer):
    """Renames class names, references to them, and names in UnitDecl(...) declarations."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        if ast.unparse(node.func).split(".")[-1] == "UnitDecl":
            names = node.args[:1] + [k.value for k in node.keywords if k.arg == "name"]
            for arg in names:
                if isinstance(arg, ast.Constant) and arg.value in self.mapping:
                    arg.value = self.mapping[arg.value]
        return node


def rename_references(unit: Unit, mapping: dict[str, str]) -> Unit:
    """The unit with every class name in ``mapping`` renamed (its own name included)."""
    mapping = {old: new for old, new in mapping.items() if old != new}
    tree = ast.parse(unit.code)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    declared = {c.name for c in unit.children}
    if not mapping.keys() & (names | declared | {unit.name}):
        return unit
    code = ast.unparse(_Renamer(mapping).visit(tree))
    children = tuple(replace(c, name=mapping.get(c.name, c.name)) for c in unit.children)
    return replace(unit, name=mapping.get(unit.name, unit.name), code=code, children=children)


def reachable(design: Design, skip: str | None = None) -> list[str]:
    """Units reachable from the root without entering ``skip`` (parents first)."""
    order: list[str] = []
    queue = [design.root]
    while queue:
        name = queue.pop(0)
        if name == skip or name in order or name not in design.units:
            continue
        order.append(name)
        queue.extend(design.children_of(name))
    return order


@functools.lru_cache(maxsize=4096)
def canonical(code: str) -> str:
    """Unit.canonical_code, memoised: operators compare the same units many times."""
    return ast.unparse(ast.parse(code))


def same_subtree(a: Design, a_unit: str, b: Design, b_unit: str) -> bool:
    """Whether two units have the same canonical code and identical descendants, by name."""
    if a_unit not in a.units or b_unit not in b.units:
        return False
    if canonical(a.units[a_unit].code) != canonical(b.units[b_unit].code):
        return False
    return all(same_subtree(a, c, b, c) for c in set(a.children_of(a_unit)))


def init_params(unit: Unit) -> list[str]:
    """Keyword hyperparameters the unit's __init__ reads (its CONFIG keys)."""
    cls = ast.parse(unit.code).body[0]
    init = next(m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__init__")
    args = init.args
    return [a.arg for a in (args.args + args.kwonlyargs)[4:] if a.arg not in ("device", "dtype")]


def _fresh(name: str, taken: set[str]) -> str:
    k = 2
    while f"{name}{k}" in taken:
        k += 1
    return f"{name}{k}"


def transplant(target: Design, slot: str, donor: Design, donor_unit: str) -> tuple[Design, list[str]]:
    """Replace ``slot`` of ``target`` (and its subtree) by ``donor_unit``'s subtree of ``donor``.

    The incoming root takes the slot's name so the slot's parents need no change; incoming
    descendants keep their names unless taken in the target, where they are renamed (or
    shared when the target holds an identical subtree under that name). CONFIG keys the
    incoming units read are copied from the donor when the target lacks them; imports are
    merged. Returns the new design (re-parsed) and notes saying what happened.
    """
    if slot == target.root:
        raise ValueError("cannot transplant over the root unit")
    kept = reachable(target, skip=slot)
    incoming = donor.subtree(donor_unit)
    mapping = {donor_unit: slot}
    taken = set(kept) | {slot}
    shared: set[str] = set()
    notes: list[str] = []
    for name in incoming[1:]:
        if name not in taken:
            mapping[name] = name
        elif name in kept and slot not in target.subtree(name) and same_subtree(target, name, donor, name):
            shared.add(name)
            mapping[name] = name
        else:
            mapping[name] = _fresh(name, taken | set(donor.units))
            notes.append(f"renamed incoming {name} to {mapping[name]}")
        taken.add(mapping[name])
    moved = {
        mapping[n]: rename_references(donor.units[n], mapping)
        for n in incoming
        if n not in shared
    }

    units: dict[str, Unit] = {}
    for name, unit in target.units.items():
        if name == slot:
            units.update(moved)
        elif name in kept:
            units[name] = unit

    config = dict(target.config)
    for unit in moved.values():
        for key in init_params(unit):
            if key in donor.config and key not in config:
                config[key] = donor.config[key]
                notes.append(f"config {key}={donor.config[key]!r} from {donor.name}")
            elif key in donor.config and config[key] != donor.config[key]:
                notes.append(f"config {key} stays {config[key]!r} ({donor.name} had {donor.config[key]!r})")
    imports = list(target.imports) + [i for i in donor.imports if i not in target.imports]
    child = Design(target.name, target.root, units, config, tuple(imports), target.doc)
    notes.insert(0, f"{slot} <- {donor.name}.{donor_unit} ({len(moved)} unit(s))")
    return load_design(child.to_source(), name=target.name), notes

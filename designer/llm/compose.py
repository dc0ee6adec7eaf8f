"""Putting one unit written by the coder into the current tree, without executing anything.

The coder answers with one GAU class (and any imports it needs). It replaces the unit of
that name; every other unit stays as it was (protected). Children the new unit declares
that the tree does not hold yet stand in as identity placeholders until they are written.
Error messages count lines in the coder's own code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from genesys.design import Design, DesignFormatError, load_design

PLACEHOLDER_DOC = "Placeholder for a unit not written yet: returns X unchanged."
PLACEHOLDER = '''class {name}(GAUBase):
    """{doc}"""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)

    def _forward(self, X, **Z):
        return X, {{}}
'''
GAU_IMPORT = "from genesys.lmade import GAUBase, UnitDecl"


class UnitError(ValueError):
    """The coder's answer cannot become the unit; the message is meant for the coder."""


@dataclass
class Composed:
    design: Design
    missing: list[str]  # declared children that are placeholders now
    first_line: int  # where the unit's class starts in the design source (1-based)
    lines: int  # how many lines the unit's code has


def is_placeholder(design: Design, unit: str) -> bool:
    return unit in design.units and design.units[unit].desc == PLACEHOLDER_DOC


def placeholder(name: str) -> str:
    return PLACEHOLDER.format(name=name, doc=PLACEHOLDER_DOC)


def empty_tree(root: str, name: str) -> Design:
    """A tree holding only a placeholder root (the start of a design from scratch)."""
    imports = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n" + GAU_IMPORT
    source = f"{imports}\n\n\n{placeholder(root)}\n\nROOT = {root!r}\nCONFIG = {{}}\n"
    return load_design(source, name=name)


def _split(code: str, unit: str) -> tuple[list[str], str]:
    """(import lines, class source) of the coder's answer."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise UnitError(f"syntax error at line {e.lineno} of your code: {e.msg}") from None
    imports, classes = [], []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.unparse(node))
        elif isinstance(node, ast.ClassDef):
            classes.append(node)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            raise UnitError(f"line {node.lineno} of your code: only imports and the class "
                            f"{unit} may appear at top level (put helpers inside the class)")
    if [c.name for c in classes] != [unit]:
        found = ", ".join(c.name for c in classes) or "no class"
        raise UnitError(f"write exactly one class named {unit} (found: {found}); declare "
                        "children in CHILDREN with UnitDecl and they are written next")
    return imports, ast.get_source_segment(code, classes[0]) or ast.unparse(classes[0])


def compose(tree: Design, unit: str, code: str, name: str) -> Composed:
    """The tree with ``unit`` replaced by the coder's class; unreachable units dropped."""
    imports, class_code = _split(code, unit)
    merged_imports = list(dict.fromkeys([*tree.imports, *imports]))
    codes = {n: u.code for n, u in tree.units.items()}
    codes[unit] = class_code
    declared = _declared(class_code)
    missing = [c for c in declared if c not in codes]
    for child in missing:
        codes[child] = placeholder(child)
    design = _load(tree, merged_imports, codes, name, unit)
    keep = design.subtree()
    if len(keep) < len(design.units):
        design = _load(tree, merged_imports, {n: codes[n] for n in codes if n in keep}, name, unit)
    source = design.to_source()
    first = next(i for i, line in enumerate(source.splitlines(), 1)
                 if line.startswith(f"class {unit}("))
    return Composed(design, missing, first, len(class_code.splitlines()))


def _declared(class_code: str) -> list[str]:
    """Child names in the class's CHILDREN = [UnitDecl("Name", ...), ...]."""
    names = []
    for node in ast.walk(ast.parse(class_code)):
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "UnitDecl":
            first = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "name"), None)
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.append(first.value)
    return list(dict.fromkeys(names))


def _load(tree: Design, imports: list[str], codes: dict[str, str], name: str, unit: str) -> Design:
    parts = ([f'"""{tree.doc}"""'] if tree.doc else []) + ["\n".join(imports)]
    parts += [c.rstrip() for c in codes.values()]
    parts.append(f"ROOT = {tree.root!r}\nCONFIG = {tree.config!r}")
    source = "\n\n\n".join(parts) + "\n"
    try:
        return load_design(source, name=name)
    except DesignFormatError as exc:
        raise UnitError(_in_unit(str(exc), source, unit)) from None


def _in_unit(message: str, source: str, unit: str) -> str:
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines, 1) if line.startswith(f"class {unit}(")), 0)
    return remap_lines(message, first, len(lines) - first + 1, unit)


def remap_lines(message: str, first: int, count: int, unit: str) -> str:
    """``line N`` of the design file -> ``line k of your unit`` where N falls in the unit."""
    def shift(match: re.Match) -> str:
        n = int(match.group(1))
        if first <= n < first + count:
            return f"line {n - first + 1} of your {unit} code"
        return match.group(0)
    return re.sub(r"line (\d+)", shift, message)

"""The format check: static rules on a design's source, run in the parent on the AST only.

``load_design`` (genesys.design) enforces the file format (top-level statements, one GAU
per class, the unit signatures, ROOT, CONFIG, declared children exist). On top of that
this module checks what the design may import and touch, and that the tree is coherent:
declared children are instantiated, units are reachable from ROOT. The import and
attribute rules are a first line of defence with readable messages; the sandbox is what
actually contains design code.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field

from genesys.design import Design, DesignFormatError, load_design

ALLOWED_IMPORTS = frozenset({
    "torch", "math", "typing", "functools", "itertools", "operator", "collections",
    "dataclasses", "numbers", "__future__",
})
GENESYS_IMPORTS = frozenset({"genesys.lmade", "genesys.lmade.gau", "genesys.design"})
OPTIONAL_IMPORTS = frozenset({"einops"})  # allowed when installed
# Attribute names that reach the OS, files, the network or native code from torch & co.
DENIED_ATTRIBUTES = frozenset({
    "os", "sys", "ctypes", "subprocess", "importlib", "builtins", "socket", "shutil",
    "from_file", "load", "save", "hub", "multiprocessing", "distributed", "cpp_extension",
    "load_library", "serialization", "pathlib", "tempfile", "pickle", "marshal",
})
DENIED_NAMES = frozenset({
    "eval", "exec", "compile", "__import__", "globals", "locals", "vars", "open", "input",
    "breakpoint", "memoryview", "__builtins__", "__loader__", "__spec__", "exit", "quit",
})
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__class__", "__doc__"})
REFLECTION_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})


@dataclass
class StaticResult:
    design: Design | None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.design is not None and not self.errors


def check_source(source: str, name: str | None = None) -> StaticResult:
    """Parse and statically check design source; never executes it."""
    try:
        design = load_design(source, name=name)
    except DesignFormatError as exc:
        return StaticResult(None, [str(exc)])
    result = StaticResult(design)
    tree = ast.parse(source)
    modules = _check_imports(tree, result.errors)
    _check_names(tree, modules, result.errors)
    _check_tree(design, tree, result)
    return result


def _allowed(module: str) -> bool:
    if module in GENESYS_IMPORTS:
        return True
    for allowed in ALLOWED_IMPORTS | OPTIONAL_IMPORTS:
        if module == allowed or module.startswith(allowed + "."):
            return allowed not in OPTIONAL_IMPORTS or importlib.util.find_spec(allowed) is not None
    return False


def _check_imports(tree: ast.Module, errors: list[str]) -> set[str]:
    """Report disallowed imports; return the local names bound to imported modules."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _allowed(alias.name):
                    errors.append(f"line {node.lineno}: import of {alias.name!r} is not allowed; "
                                  f"designs may import only {_allowed_text()}")
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or not _allowed(module):
                errors.append(f"line {node.lineno}: import from {module!r} is not allowed; "
                              f"designs may import only {_allowed_text()}")
            for alias in node.names:
                if module not in GENESYS_IMPORTS:
                    names.add(alias.asname or alias.name)
    return names


def _allowed_text() -> str:
    return ", ".join(sorted(ALLOWED_IMPORTS | OPTIONAL_IMPORTS | {"genesys.lmade"}))


def _chain_root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _check_names(tree: ast.Module, modules: set[str], errors: list[str]) -> None:
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Name) and node.id in DENIED_NAMES:
            errors.append(f"line {line}: {node.id!r} is not allowed in design code")
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if attr.startswith("__") and attr.endswith("__") and attr not in ALLOWED_DUNDERS:
                errors.append(f"line {line}: access to {attr!r} is not allowed in design code")
            elif _chain_root(node) in modules and (
                    attr in DENIED_ATTRIBUTES or attr.startswith("_")):
                errors.append(f"line {line}: {ast.unparse(node)!r} is not allowed in design "
                              "code (it reaches files, processes or internals)")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in REFLECTION_CALLS and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            attr = node.args[1].value
            if attr.startswith("_") or attr in DENIED_ATTRIBUTES:
                errors.append(f"line {line}: {node.func.id}(..., {attr!r}) is not allowed")


def _check_tree(design: Design, tree: ast.Module, result: StaticResult) -> None:
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for name, unit in design.units.items():
        used = {n.id for n in ast.walk(classes[name]) if isinstance(n, ast.Name)}
        line = classes[name].lineno
        declared = {c.name for c in unit.children}
        for child in sorted(declared - used):
            result.errors.append(f"line {line}: unit {name!r} declares child {child!r} in "
                                 "CHILDREN but never instantiates it")
        for child in sorted((used & set(design.units)) - declared - {name}):
            result.warnings.append(f"line {line}: unit {name!r} uses unit {child!r} without "
                                   "declaring it in CHILDREN")
    reachable = set(design.subtree())
    for name in design.units:
        if name not in reachable:
            result.warnings.append(f"unit {name!r} is not reachable from ROOT {design.root!r}")

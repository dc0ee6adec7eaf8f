"""The format check: static rules on a design's source, run in the parent on the AST only.

``load_design`` (genesys.design) enforces the file format (top-level statements, one GAU
per class, the unit signatures, ROOT, CONFIG, declared children exist). On top of that
this module checks what the design may import and touch, and that the tree is coherent:
declared children are instantiated, units are reachable from ROOT. The import and
attribute rules give the design's author an early, readable message; they are not the
defence (Python has too many ways to reach an attribute): the sandbox's jail, seccomp
filter and limits are what contain design code.

What the rules see through: aliases of modules (``t = torch; t.os``: a module may be
bound to another name only by a plain assignment, which is followed, and used otherwise
only as ``module.name``), imported names (``from torch import os, from_file``), dotted
imports (``import torch.utils.cpp_extension``), reflection with computed names
(``getattr(torch, "o" + "s")``) and reflection helpers (``operator.attrgetter``,
``getattr`` passed around as a value).
"""

from __future__ import annotations

import ast
import importlib.util
import os
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
    "attrgetter", "methodcaller",
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
    reached = _follow_aliases(tree, modules)
    _check_names(tree, modules, reached, result.errors)
    _check_tree(design, tree, result)
    return result


def _allowed(module: str) -> bool:
    if module in GENESYS_IMPORTS:
        return True
    for allowed in ALLOWED_IMPORTS | OPTIONAL_IMPORTS:
        if module == allowed or module.startswith(allowed + "."):
            return allowed not in OPTIONAL_IMPORTS or importlib.util.find_spec(allowed) is not None
    return False


def _denied_part(dotted: str) -> str | None:
    return next((p for p in dotted.split(".") if p in DENIED_ATTRIBUTES or p.startswith("_")),
                None)


def _is_submodule(dotted: str) -> bool:
    """Is ``a.b.c`` a module (found on disk from the top package's folder, importing
    nothing)?"""
    top, *rest = dotted.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not rest:
        return spec is not None
    folders = list(spec.submodule_search_locations or [])
    if not folders:
        return False
    path = os.path.join(folders[0], *rest)
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def _check_imports(tree: ast.Module, errors: list[str]) -> dict[str, str]:
    """Report disallowed imports; return the local names bound to imported modules (and
    the module each names)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _allowed(alias.name):
                    errors.append(f"line {node.lineno}: import of {alias.name!r} is not allowed; "
                                  f"designs may import only {_allowed_text()}")
                elif part := _denied_part(alias.name):
                    errors.append(f"line {node.lineno}: import of {alias.name!r} is not allowed "
                                  f"(its part {part!r} reaches files, processes or internals)")
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or not _allowed(module):
                errors.append(f"line {node.lineno}: import from {module!r} is not allowed; "
                              f"designs may import only {_allowed_text()}")
            elif part := _denied_part(module):
                errors.append(f"line {node.lineno}: import from {module!r} is not allowed "
                              f"(its part {part!r} reaches files, processes or internals)")
            for alias in node.names:
                if module in GENESYS_IMPORTS:
                    continue
                if alias.name in DENIED_ATTRIBUTES or alias.name.startswith("_") \
                        or alias.name == "*":
                    errors.append(f"line {node.lineno}: 'from {module} import {alias.name}' is "
                                  "not allowed in design code (it reaches files, processes or "
                                  "internals)")
                if _is_submodule(f"{module}.{alias.name}"):
                    names[alias.asname or alias.name] = f"{module}.{alias.name}"
    return names


def _module_name(node: ast.AST, modules: dict[str, str]) -> str | None:
    """The module ``node`` names (a module name, or an attribute chain naming a
    submodule), else None."""
    if isinstance(node, ast.Name):
        return modules.get(node.id)
    root = _chain_root(node)
    if root not in modules or not isinstance(node, ast.Attribute):
        return None
    dotted = modules[root] + ast.unparse(node)[len(root):]
    return dotted if _is_submodule(dotted) else None


def _follow_aliases(tree: ast.Module, modules: dict[str, str]) -> set[str]:
    """Names bound to a module by plain assignment (``t = torch``) are modules too; returns
    the names bound to anything else reached from a module (``f = torch.nn.functional.gelu``,
    ``t = torch.nn.parameter.torch``), whose attributes are checked like a module's."""
    reached: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) or \
                    node.value is None:
                continue
            origin = _module_name(node.value, modules)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not isinstance(target, ast.Name) or target.id in modules:
                    continue
                if origin is not None:
                    modules[target.id] = origin
                    changed = True
                elif _chain_root(node.value) in modules or _chain_root(node.value) in reached:
                    changed |= target.id not in reached
                    reached.add(target.id)
    return reached


def _allowed_text() -> str:
    return ", ".join(sorted(ALLOWED_IMPORTS | OPTIONAL_IMPORTS | {"genesys.lmade"}))


def _chain_root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _check_names(tree: ast.Module, modules: dict[str, str], reached: set[str],
                 errors: list[str]) -> None:
    roots = set(modules) | reached
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Name) and node.id in DENIED_NAMES:
            errors.append(f"line {line}: {node.id!r} is not allowed in design code")
        elif isinstance(node, ast.Name) and node.id in REFLECTION_CALLS and not (
                isinstance(parents.get(node), ast.Call) and parents[node].func is node):
            errors.append(f"line {line}: {node.id!r} may only be called directly in design "
                          "code, not passed around or renamed")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) \
                and node.id in modules:
            _check_module_use(node, parents, errors)
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if attr.startswith("__") and attr.endswith("__") and attr not in ALLOWED_DUNDERS:
                errors.append(f"line {line}: access to {attr!r} is not allowed in design code")
            elif _chain_root(node) in roots and (
                    attr in DENIED_ATTRIBUTES or attr.startswith("_")):
                errors.append(f"line {line}: {ast.unparse(node)!r} is not allowed in design "
                              "code (it reaches files, processes or internals)")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in REFLECTION_CALLS and len(node.args) >= 2):
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                if _chain_root(node.args[0]) in roots:
                    errors.append(f"line {line}: {node.func.id}() on a module with a computed "
                                  "name is not allowed; write the attribute out")
                continue
            attr = name.value
            if attr.startswith("_") or attr in DENIED_ATTRIBUTES:
                errors.append(f"line {line}: {node.func.id}(..., {attr!r}) is not allowed")


def _check_module_use(node: ast.Name, parents: dict, errors: list[str]) -> None:
    """A module may be used as ``module.name``, as the first argument of a reflection call
    (checked above), or assigned to a plain name (followed as an alias); nothing else
    (passed to functions, put in containers, returned...), since that hides what it reaches."""
    parent = parents.get(node)
    if isinstance(parent, ast.Attribute) and parent.value is node:
        return
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and \
            parent.func.id in REFLECTION_CALLS and parent.args and parent.args[0] is node:
        return
    if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and \
            parent.value is node and all(isinstance(t, ast.Name) for t in (
                parent.targets if isinstance(parent, ast.Assign) else [parent.target])):
        return
    errors.append(f"line {node.lineno}: the module {node.id!r} may only be used as "
                  f"{node.id}.<name> in design code")


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

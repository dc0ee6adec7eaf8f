"""Designs: a tree of GAU classes in one Python source file, plus ROOT and CONFIG.

A design file holds only a module docstring, imports, GAU classes (direct subclasses of
GAUBase), ``ROOT = "<root unit>"`` and ``CONFIG = {...}``. Parsing is static (AST only):
loading a design never runs its code, and this module needs no torch, so the coordinator
can validate and digest designs. ``Design.namespace()`` executes a design and must only be
called where untrusted code may run (a sandboxed child process, or for trusted seeds).
"""

from __future__ import annotations

import ast
import hashlib
import json
import linecache
import pprint
import sys
import types
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

INIT_SIGNATURE = "(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs)"
_INIT_POSITIONAL = ["self", "embed_dim", "block_loc", "kwarg_all"]


@dataclass(frozen=True)
class UnitDecl:
    """A child unit as its parent declares it: which class, and what flows in and out."""

    name: str
    desc: str = ""
    inputs: tuple[str, ...] = ("X",)
    outputs: tuple[str, ...] = ("Y",)
    requirements: str = ""

    def __post_init__(self) -> None:
        # Accept lists from design files while keeping the declaration hashable.
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))


class DesignFormatError(ValueError):
    """The design source breaks the single-file design format; the message says where."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass(frozen=True)
class Unit:
    """One GAU class of a design: its source code and the children it declares."""

    name: str
    code: str
    children: tuple[UnitDecl, ...] = ()
    desc: str = ""

    @cached_property
    def canonical_code(self) -> str:
        """The code with formatting and comments normalised away (used for digests)."""
        return ast.unparse(ast.parse(self.code))

    def renamed(self, new_name: str) -> Unit:
        """The same unit under another class name (for swapping units between designs)."""
        tree = ast.parse(self.code)
        tree.body[0].name = new_name
        return replace(self, name=new_name, code=ast.unparse(tree))


@dataclass(frozen=True)
class Design:
    """A GAU tree: units keyed by class name, the root unit, and the shared CONFIG."""

    name: str
    root: str
    units: dict[str, Unit]
    config: dict[str, Any] = field(default_factory=dict)
    imports: tuple[str, ...] = ()
    doc: str = ""
    # The text the design was loaded from, with the content it held: to_source() returns
    # it while the design still holds that content, so tracebacks and error lines point
    # at the author's own line numbers. Not part of identity (see ``digest``).
    source: str = field(default="", compare=False, repr=False)
    source_content: tuple = field(default=(), compare=False, repr=False)

    # -- identity -----------------------------------------------------------------------
    @property
    def digest(self) -> str:
        """sha256 over the canonical code of every unit, the root, imports and CONFIG."""
        content = {
            "root": self.root,
            "config": self.config,
            "imports": sorted(self.imports),
            "units": {n: self.units[n].canonical_code for n in sorted(self.units)},
        }
        blob = json.dumps(content, sort_keys=True, default=repr).encode()
        return hashlib.sha256(blob).hexdigest()

    # -- tree ---------------------------------------------------------------------------
    def children_of(self, unit: str) -> list[str]:
        return [c.name for c in self.units[unit].children]

    def subtree(self, unit: str | None = None) -> list[str]:
        """Unit names reachable from ``unit`` (default: the root), parents first."""
        order: list[str] = []
        stack = [unit or self.root]
        while stack:
            name = stack.pop(0)
            if name in order or name not in self.units:
                continue
            order.append(name)
            stack.extend(self.children_of(name))
        return order

    def tree_lines(self) -> list[str]:
        """An indented picture of the unit tree, one unit per line."""
        lines: list[str] = []

        def walk(name: str, depth: int, seen: tuple[str, ...]) -> None:
            desc = self.units[name].desc.strip().splitlines()
            summary = f"  - {desc[0]}" if desc else ""
            lines.append(f"{'  ' * depth}{name}{summary}")
            for child in self.children_of(name):
                if child in seen:
                    lines.append(f"{'  ' * (depth + 1)}{child} (recursive)")
                elif child in self.units:
                    walk(child, depth + 1, (*seen, child))

        walk(self.root, 0, (self.root,))
        return lines

    def with_units(self, units: dict[str, Unit], **changes: Any) -> Design:
        """A new design with units added or replaced (and other fields changed)."""
        return replace(self, units={**self.units, **units}, **changes)

    # -- source -------------------------------------------------------------------------
    def content(self) -> tuple:
        """Everything the design file states (the name is not in the file)."""
        units = tuple((u.name, u.code, u.children, u.desc) for u in self.units.values())
        return (self.root, repr(self.config), self.imports, self.doc, units)

    def to_source(self) -> str:
        if self.source and self.source_content == self.content():
            return self.source
        parts: list[str] = []
        if self.doc:
            parts.append(f'"""{self.doc}"""\n')
        if self.imports:
            parts.append("\n".join(self.imports) + "\n")
        parts.extend(u.code.rstrip() + "\n" for u in self.units.values())
        config = pprint.pformat(self.config, sort_dicts=False, width=88)
        parts.append(f"ROOT = {self.root!r}\nCONFIG = {config}\n")
        return "\n\n".join(parts)

    def namespace(self) -> dict[str, Any]:
        """Execute the design and return its module namespace (untrusted code runs here)."""
        return execute_design(self.to_source(), f"<design:{self.name}>", self.digest)

    def root_class(self) -> type:
        from genesys.lmade.gau import GAUBase

        cls = self.namespace()[self.root]
        if not (isinstance(cls, type) and issubclass(cls, GAUBase)):
            raise DesignFormatError(f"ROOT {self.root!r} is not a GAUBase subclass")
        return cls

    # -- protobuf -----------------------------------------------------------------------
    def to_proto(self) -> Any:
        from genesys.v1 import design_pb2

        return design_pb2.GauTree(
            name=self.name,
            root=self.root,
            config_json=json.dumps(self.config, sort_keys=True),
            imports=list(self.imports),
            doc=self.doc,
            units=[
                design_pb2.GauUnit(
                    name=u.name,
                    code=u.code,
                    desc=u.desc,
                    children=[
                        design_pb2.UnitDecl(
                            name=c.name, desc=c.desc, inputs=list(c.inputs),
                            outputs=list(c.outputs), requirements=c.requirements,
                        )
                        for c in u.children
                    ],
                )
                for u in self.units.values()
            ],
        )

    @classmethod
    def from_proto(cls, msg: Any) -> Design:
        units = {
            u.name: Unit(
                name=u.name,
                code=u.code,
                desc=u.desc,
                children=tuple(
                    UnitDecl(c.name, c.desc, tuple(c.inputs), tuple(c.outputs), c.requirements)
                    for c in u.children
                ),
            )
            for u in msg.units
        }
        config = json.loads(msg.config_json) if msg.config_json else {}
        design = cls(msg.name, msg.root, units, config, tuple(msg.imports), msg.doc)
        # Re-parse so a tree from the wire obeys the same rules as a file.
        return load_design(design.to_source(), name=design.name)


def load_design(path_or_source: str | Path, name: str | None = None) -> Design:
    """Parse a design file (a path) or design source text, without executing it."""
    source, default_name = _read(path_or_source)
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise DesignFormatError(f"syntax error: {e.msg}", e.lineno) from None

    doc = ast.get_docstring(tree, clean=False) or ""
    imports: list[str] = []
    units: dict[str, Unit] = {}
    class_lines: dict[str, int] = {}
    root: str | None = None
    config: dict[str, Any] | None = None
    for i, node in enumerate(tree.body):
        if i == 0 and doc and isinstance(node, ast.Expr):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.unparse(node))
        elif isinstance(node, ast.ClassDef):
            units[node.name] = _parse_unit(node, source)
            class_lines[node.name] = node.lineno
        elif _assigns(node, "ROOT"):
            root = _literal(node, "ROOT")
            if not isinstance(root, str):
                raise DesignFormatError("ROOT must be a string naming the root unit class", node.lineno)
        elif _assigns(node, "CONFIG"):
            config = _literal(node, "CONFIG")
            if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
                raise DesignFormatError("CONFIG must be a dict with string keys", node.lineno)
        else:
            raise DesignFormatError(
                f"top-level {type(node).__name__} is not allowed: a design file holds only "
                "imports, GAU classes, ROOT and CONFIG (put helpers inside the unit that uses them)",
                node.lineno,
            )

    if root is None:
        raise DesignFormatError('no ROOT: add ROOT = "<name of the root unit class>"')
    if config is None:
        raise DesignFormatError("no CONFIG: add CONFIG = {...} (use {} when there is nothing to share)")
    if root not in units:
        raise DesignFormatError(f"ROOT names {root!r}, which is not a GAU class of this design")
    for unit in units.values():
        for child in unit.children:
            if child.name not in units:
                raise DesignFormatError(
                    f"unit {unit.name!r} declares child {child.name!r}, which is not defined",
                    class_lines[unit.name],
                )
    design = Design(name or default_name or root.lower(), root, units, config, tuple(imports), doc)
    return replace(design, source=source, source_content=design.content())


def _read(path_or_source: str | Path) -> tuple[str, str | None]:
    if isinstance(path_or_source, Path) or (
        "\n" not in path_or_source and path_or_source.endswith(".py")
    ):
        path = Path(path_or_source)
        try:
            return path.read_text(), path.stem
        except OSError as e:
            raise DesignFormatError(f"cannot read design file {path}: {e.strerror}") from None
    return path_or_source, None


def _assigns(node: ast.stmt, target: str) -> bool:
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == target
    )


def _literal(node: ast.Assign, what: str) -> Any:
    try:
        return ast.literal_eval(node.value)
    except ValueError:
        raise DesignFormatError(f"{what} must be a literal value", node.lineno) from None


def _parse_unit(node: ast.ClassDef, source: str) -> Unit:
    where = node.lineno
    bases = [ast.unparse(b) for b in node.bases]
    if len(bases) != 1 or bases[0].split(".")[-1] != "GAUBase":
        raise DesignFormatError(
            f"class {node.name!r} must subclass GAUBase directly (bases: {bases or 'none'}); "
            "one GAU per class, no other classes at top level",
            where,
        )
    if node.decorator_list:
        raise DesignFormatError(f"class {node.name!r} must not be decorated", where)
    methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
    init = methods.get("__init__")
    if init is None or not _init_signature_ok(init.args):
        got = f"({ast.unparse(init.args)})" if init else "no __init__"
        raise DesignFormatError(
            f"unit {node.name!r}: __init__ must be {INIT_SIGNATURE}; got {got}",
            init.lineno if init else where,
        )
    fwd = methods.get("_forward")
    if fwd is None or [a.arg for a in fwd.args.args[:2]] != ["self", "X"]:
        raise DesignFormatError(
            f"unit {node.name!r} must define _forward(self, X, **Z) returning (Y, Z)",
            fwd.lineno if fwd else where,
        )
    return Unit(
        name=node.name,
        code=ast.get_source_segment(source, node) or ast.unparse(node),
        children=_parse_children(node),
        desc=ast.get_docstring(node) or "",
    )


def _init_signature_ok(args: ast.arguments) -> bool:
    positional = [a.arg for a in args.posonlyargs + args.args]
    if positional[:4] != _INIT_POSITIONAL or args.vararg is not None or args.kwarg is None:
        return False
    named = positional[4:] + [a.arg for a in args.kwonlyargs]
    return "device" in named and "dtype" in named


def _parse_children(node: ast.ClassDef) -> tuple[UnitDecl, ...]:
    for stmt in node.body:
        if _assigns(stmt, "CHILDREN"):
            value = stmt.value
            if not isinstance(value, (ast.List, ast.Tuple)):
                raise DesignFormatError("CHILDREN must be a list of UnitDecl(...)", stmt.lineno)
            return tuple(_parse_decl(elt) for elt in value.elts)
    return ()


def _parse_decl(node: ast.expr) -> UnitDecl:
    if not (isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "UnitDecl"):
        raise DesignFormatError("CHILDREN entries must be UnitDecl(...) calls", node.lineno)
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        return UnitDecl(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise DesignFormatError(f"bad UnitDecl: {e}", node.lineno) from None


def execute_design(source: str, filename: str, digest: str) -> dict[str, Any]:
    """Run design source as a module registered in ``sys.modules`` and return its namespace.

    Registered so that tools that import a function's module by name (torch.compile's
    Dynamo resolves globals that way) find it; tracebacks show ``filename`` lines."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(f"genesys_design_{digest[:12]}")
    module.__file__ = filename
    sys.modules[module.__name__] = module
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - sandboxed callers
    return module.__dict__

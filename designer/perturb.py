"""Configuration mutation: move one numeric hyperparameter of a design within sensible bounds.

The tunable values are the numbers in CONFIG that a unit of the design reads and the
numeric keyword defaults of the units' ``__init__`` (setting such a key in CONFIG overrides
the default in every unit that reads it). A CONFIG key no unit reads (left behind when the
unit that read it was swapped out) is never moved: the child would be the same network. Each kind of hyperparameter has its own move: head counts and sizes, chunk
sizes and ranks step along powers of two (so widths keep dividing), eps and rotary bases
move by factors, ratios by small multiplicative steps.
"""

from __future__ import annotations

import ast
import operator
import random
import re
from collections.abc import Callable
from dataclasses import replace

from genesys.design import Design

Number = int | float

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg}


def _number(node: ast.expr) -> Number | None:
    """The value of a constant arithmetic expression such as ``8 / 3``, else None."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        v = _number(node.operand)
        return None if v is None else _OPS[type(node.op)](v)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = _number(node.left), _number(node.right)
        if a is None or b is None or (isinstance(node.op, ast.Div) and b == 0):
            return None
        return _OPS[type(node.op)](a, b)
    return None


def read_keys(design: Design) -> set[str]:
    """CONFIG keys some unit of the design reads: an ``__init__`` keyword, or a string
    literal in a unit's code (``kwargs["key"]``, ``kwarg_all.get("key")``)."""
    keys: set[str] = set()
    for name in design.subtree():
        tree = ast.parse(design.units[name].code)
        for node in ast.walk(tree):
            if isinstance(node, ast.arg):
                keys.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                keys.add(node.value)
    return keys & set(design.config)


def tunables(design: Design) -> dict[str, Number]:
    """Numeric hyperparameters the design's units read, with their current values."""
    read = read_keys(design)
    values: dict[str, Number] = {
        k: v for k, v in design.config.items() if type(v) in (int, float) and k in read
    }
    for name in design.subtree():
        cls = ast.parse(design.units[name].code).body[0]
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                args = fn.args
                positional = args.args[len(args.args) - len(args.defaults):]
                pairs = list(zip(positional, args.defaults, strict=True)) + [
                    (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
                ]
                for arg, default in pairs:
                    value = _number(default)
                    if value is not None and arg.arg not in values:
                        values[arg.arg] = value
    return values


def _pick(options: list[Number], current: Number, rng: random.Random) -> Number:
    others = [o for o in options if o != current]
    return rng.choice(others)


def _scaled(factors: list[float], lo: float, hi: float) -> Callable[[Number, random.Random], Number]:
    def move(value: Number, rng: random.Random) -> Number:
        new = min(hi, max(lo, value * rng.choice(factors)))
        return float(f"{new:.4g}")
    return move


def _ratio(value: Number, rng: random.Random) -> Number:
    if isinstance(value, int):
        return _pick([1, 2, 3, 4], value, rng)
    return _scaled([0.75, 0.875, 1.125, 1.25, 1.5], 0.5, 8.0)(value, rng)


def _generic(value: Number, rng: random.Random) -> Number:
    if isinstance(value, int):
        return max(1, value + rng.choice([-1, 1]) * max(1, value // 4))
    return _scaled([0.5, 0.7, 1.4, 2.0], -1e9, 1e9)(value, rng)


MOVES: tuple[tuple[str, Callable[[Number, random.Random], Number]], ...] = (
    (r"eps", _scaled([0.1, 10.0], 1e-8, 1e-2)),
    (r"n_?heads|num_heads", lambda v, rng: _pick([1, 2, 4, 8], v, rng)),
    (r"head_?(dim|size)", lambda v, rng: _pick([16, 32, 64, 128], v, rng)),
    (r"chunk|mini_batch", lambda v, rng: _pick([8, 16, 32, 64, 128], v, rng)),
    (r"rank|d_state", lambda v, rng: _pick([8, 16, 32, 64, 128], v, rng)),
    (r"kernel|d_conv", lambda v, rng: _pick([2, 3, 4, 5, 6, 8], v, rng)),
    (r"base", _scaled([0.25, 0.5, 2.0, 4.0], 100.0, 1e6)),
    (r"ratio|factor|expand", _ratio),
)


def move_value(key: str, value: Number, rng: random.Random) -> Number:
    """A new value for hyperparameter ``key``, different from ``value`` where possible."""
    for pattern, move in MOVES:
        if re.search(pattern, key):
            return move(value, rng)
    return _generic(value, rng)


def perturb(design: Design, rng: random.Random, key: str | None = None) -> tuple[Design, str]:
    """The design with one hyperparameter moved, and a note saying which and how."""
    values = tunables(design)
    if not values:
        raise ValueError(f"design {design.name!r} has no numeric hyperparameters")
    key = key or rng.choice(sorted(values))
    old = values[key]
    new = move_value(key, old, rng)
    if isinstance(old, int) and not isinstance(new, int) and float(new).is_integer():
        new = int(new)
    where = "CONFIG" if key in design.config else "CONFIG (was a unit default)"
    return replace(design, config={**design.config, key: new}), f"config {key}: {old!r} -> {new!r} in {where}"

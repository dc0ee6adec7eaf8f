"""Designs handled as data: parsed statically with genesys.design (AST only, no torch,
nothing executed), with format errors turned into INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from genesys.design import Design, load_design
from genesys.v1 import design_pb2

from .errors import InvalidArgument

PARSE_ERRORS = (ValueError, TypeError, SyntaxError, RecursionError)


def parse_source(source: str, name: str, field: str = "source") -> Design:
    # A newline makes load_design treat the text as source, never as a file path.
    text = source if "\n" in source else source + "\n"
    try:
        return load_design(text, name=name or None)
    except PARSE_ERRORS as e:
        raise InvalidArgument(field, str(e)) from None


def parse_tree(tree: design_pb2.GauTree, field: str = "tree") -> Design:
    if not tree.units:
        raise InvalidArgument(f"{field}.units", "a design needs at least one unit")
    names = [u.name for u in tree.units]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"{field}.units", "unit names must be unique")
    try:
        return Design.from_proto(tree)
    except PARSE_ERRORS as e:
        raise InvalidArgument(field, str(e)) from None

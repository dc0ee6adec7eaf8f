"""Genetic operators on unit trees: mutation, crossover and LLM-free "scratch" designs.

- mutation: replace one unit subtree by a compatible subtree of a library design (another
  design or a seed), or move one hyperparameter (perturb.py);
- crossover: parent A's tree with one or more compatible subtrees taken from parent B,
  and each CONFIG value both parents set taken from either;
- scratch: a crossover of two library designs followed by a hyperparameter move.
All randomness comes from the ``random.Random`` passed in.

Every candidate has a readable ``label`` saying what changed against its first parent
(whose own label it extends): ``gpt+MultiScaleRetention`` (a unit swapped in),
``gpt:mlp_ratio=2`` (a hyperparameter moved), ``retnet+MHA:n_heads=2``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from genesys.design import Design

from .perturb import perturb
from .slots import Slot, compatible, slots
from .surgery import init_params, same_subtree, transplant

OPERATIONS = ("mutation", "crossover", "scratch")
MAX_LABEL = 80
P_SWAP = 0.5  # mutation: probability of a unit swap (else a hyperparameter move)
_UNSET = object()


class NoCandidate(ValueError):
    """No operator applies to these parents (nothing compatible, nothing tunable)."""


@dataclass
class Candidate:
    design: Design
    operation: str
    parents: list[str]  # parent design names
    notes: list[str] = field(default_factory=list)
    label: str = ""  # readable: what changed against the first parent


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_changes(before: Design, after: Design) -> list[str]:
    """``:key=value`` for every CONFIG value `after` sets differently from `before`."""
    return [f":{k}={_value(v)}" for k, v in sorted(after.config.items())
            if before.config.get(k, _UNSET) != v]


def make_label(base: str, changes: list[str]) -> str:
    """`base` followed by the changes, at most MAX_LABEL characters (the oldest part of a
    long lineage is dropped first)."""
    label = base + "".join(changes)
    if len(label) <= MAX_LABEL:
        return label
    stem = base.split("+")[0].split(":")[0]
    return (stem + "~" + label[len(label) - (MAX_LABEL - len(stem) - 1):])[:MAX_LABEL]


def donor_slots(target: Design, donors: list[Design]) -> list[tuple[Slot, Design, Slot]]:
    """(target slot, donor, donor slot) pairs that may swap and would change the target."""
    pairs = []
    mine = slots(target)
    for donor in donors:
        for theirs in slots(donor):
            for slot in mine:
                if compatible(slot, theirs) and not same_subtree(target, slot.unit, donor, theirs.unit):
                    pairs.append((slot, donor, theirs))
    return pairs


def swap_unit(target: Design, donors: list[Design], rng: random.Random
              ) -> tuple[Design, list[str], list[str]]:
    """(child, notes, label changes) with one compatible unit of a donor swapped in."""
    pairs = donor_slots(target, donors)
    if not pairs:
        raise NoCandidate(f"no compatible unit for any slot of {target.name!r}")
    slot, donor, theirs = rng.choice(pairs)
    child, notes = transplant(target, slot.unit, donor, theirs.unit)
    return child, notes, [f"+{theirs.unit}"]


def mutate(parent: Design, library: list[Design], rng: random.Random
           ) -> tuple[Design, list[str], list[str]]:
    if rng.random() < P_SWAP:
        try:
            return swap_unit(parent, library, rng)
        except NoCandidate:
            pass
    try:
        design, note = perturb(parent, rng)
    except ValueError as e:
        raise NoCandidate(str(e)) from None
    return design, [note], config_changes(parent, design)


def cross(a: Design, b: Design, rng: random.Random) -> tuple[Design, list[str], list[str]]:
    """A's tree with compatible subtrees of B swapped in (each slot with p = 1/2, at least
    one), and each CONFIG value of B that the child reads with p = 1/2 (at least one when
    no unit could be swapped)."""
    pairs = donor_slots(a, [b])
    by_slot: dict[str, list[tuple[Slot, Design, Slot]]] = {}
    for pair in pairs:
        by_slot.setdefault(pair[0].unit, []).append(pair)
    chosen = [s for s in sorted(by_slot) if rng.random() < 0.5]
    if by_slot and not chosen:
        chosen = [rng.choice(sorted(by_slot))]
    child, notes, changes = a, [], []
    for slot in chosen:
        if slot not in child.subtree():  # removed by an earlier swap
            continue
        _, donor, theirs = rng.choice(by_slot[slot])
        child, more = transplant(child, slot, donor, theirs.unit)
        notes += more
        changes.append(f"+{theirs.unit}")
    read = {key for name in child.subtree() for key in init_params(child.units[name])}
    differing = [k for k in sorted(b.config) if k in read and child.config.get(k, _UNSET) != b.config[k]]
    taken = [k for k in differing if rng.random() < 0.5]
    if differing and not taken and not chosen:  # same units: recombine the configuration
        taken = [rng.choice(differing)]
    child = replace(child, config={**child.config, **{k: b.config[k] for k in taken}})
    notes += [f"config {k}={b.config[k]!r} from {b.name}" for k in taken]
    if child.config == a.config and all(same_subtree(a, n, child, n) for n in (a.root,)):
        raise NoCandidate(f"{a.name!r} and {b.name!r} share no compatible, differing unit")
    return child, notes, changes + [f":{k}={_value(b.config[k])}" for k in taken]


def child_name(first_parent: str, operation: str, design: Design) -> str:
    """Short, bounded names: the first parent's stem, the operation's letter, a digest prefix."""
    return f"{first_parent.split('-')[0]}-{operation[0]}{design.digest[:6]}"


def propose(parents: list[Design], operation: str, rng: random.Random,
            library: list[Design], labels: Mapping[str, str] | None = None) -> Candidate:
    """One new design from ``parents`` by ``operation``; ``library`` supplies donor units;
    ``labels``: design name -> readable label (default: the name) that the child's extends."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(OPERATIONS)}")
    if operation == "crossover" and len(parents) < 2:
        operation = "mutation"
    if operation == "mutation" and not parents:
        raise NoCandidate("mutation needs a parent")
    if operation == "scratch":
        pool = list({d.digest: d for d in library}.values())
        if len(pool) < 2:
            raise NoCandidate("scratch needs two library designs")
        a, b = rng.sample(pool, 2)
        crossed, notes, changes = cross(a, b, rng)
        design, note = perturb(crossed, rng)
        used, notes = [a, b], [f"scratch from library designs {a.name} x {b.name}", *notes, note]
        changes += config_changes(crossed, design)
    elif operation == "crossover":
        a, b = parents[0], parents[1]
        design, notes, changes = cross(a, b, rng)
        used = [a, b]
    else:
        design, notes, changes = mutate(parents[0], library, rng)
        used = [parents[0]]
    name = child_name(used[0].name, operation, design)
    design = replace(design, name=name)
    parent_names = [p.name for p in used] if operation != "scratch" else []
    base = (labels or {}).get(used[0].name) or used[0].name
    return Candidate(design, operation, parent_names, notes, make_label(base, changes))

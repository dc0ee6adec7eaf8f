"""The ladder-of-scales budget: how much of each rung's total is released, and views.

Rung 0 is released in full; rung k+1 gets one slot per `selection_ratio` verifications
committed at rung k (paper: ~4x fewer designs per rung up the ladder), capped by its total.
"""

from __future__ import annotations

import time

from genesys.v1 import budget_pb2, experiment_pb2

from .store import LedgerRow, Store


def released(rows: list[LedgerRow], ladder: list[str], ratio: float) -> dict[str, int]:
    by_rung = {r.rung: r for r in rows}
    out: dict[str, int] = {}
    below = None
    for rung in ladder:
        row = by_rung.get(rung)
        if row is None:
            out[rung] = 0
        elif below is None:
            out[rung] = row.total
        else:
            out[rung] = min(row.total, int(below.committed // ratio))
        below = row
    return out


def ladder_view(store: Store, exp: experiment_pb2.Experiment) -> budget_pb2.BudgetLedger:
    ladder = [r.name for r in exp.config.ladder.rungs]
    rows = {r.rung: r for r in store.budget(exp.name)}
    free = released(list(rows.values()), ladder, exp.config.ladder.selection_ratio)
    view = budget_pb2.BudgetLedger(experiment=exp.name)
    view.updated_at.FromNanoseconds(time.time_ns())
    for rung in ladder:
        row = rows.get(rung, LedgerRow(rung, 0, 0, 0))
        view.rungs.add(rung=rung, total=row.total, released=free[rung], reserved=row.reserved,
                       committed=row.committed,
                       available=max(0, free[rung] - row.reserved - row.committed))
    return view


def open_rungs(store: Store, exp: experiment_pb2.Experiment) -> dict[str, int]:
    """rung -> released limit, for the rungs with budget available now."""
    return {r.rung: r.released for r in ladder_view(store, exp).rungs if r.available > 0}

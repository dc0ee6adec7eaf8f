"""An in-memory index of each experiment's evolution tree in front of the store, so that
submit, result, lease and leaderboard do not read (and parse) every design each time.

`IndexedStore` wraps a Store: every call goes through to it, and the writes that change a
design or a VERIFY job also update the index. Per experiment (loaded from the store on
first use, i.e. after a restart) it keeps the scoring view of each design (no tree,
source, trace or raw reports: what selection reads), in submission order, with
- the busy (design, rung) pairs of its VERIFY jobs (what `verify_keys` returns),
- fingerprints (functional duplicates),
- a cursor past the designs already verified (or failed) at the lowest rung, and the
  verified designs, so `verify_pool` hands selection a few candidates instead of the tree.
One coordinator process owns its store, so the index sees every write.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from genesys.v1 import design_pb2, job_pb2

from .store import Store

VERIFIABLE = (design_pb2.DESIGN_STATE_IMPLEMENTED, design_pb2.DESIGN_STATE_VERIFIED)


def scoring_view(design: design_pb2.Design) -> design_pb2.Design:
    """What selection reads of a design: no tree, source, trace, raw reports or curves."""
    out = design_pb2.Design(
        id=design.id, experiment=design.experiment, name=design.name, digest=design.digest,
        parents=design.parents, fitness=design.fitness, confidence=design.confidence,
        quadrant=design.quadrant, state=design.state, seed=design.seed,
        fingerprint=design.fingerprint, label=design.label,
        fitness_stderr=design.fitness_stderr, job_id=design.job_id)
    out.created_at.CopyFrom(design.created_at)
    for result in design.results:
        kept = out.results.add()
        kept.CopyFrom(result)
        kept.ClearField("metrics_json")
        kept.ClearField("train_curve")
        kept.ClearField("val_curve")
    return out


@dataclass
class _Tree:
    designs: dict[str, design_pb2.Design] = field(default_factory=dict)  # submission order
    order: list[str] = field(default_factory=list)
    verified: dict[str, None] = field(default_factory=dict)  # ordered set of ids
    fingerprints: dict[str, str] = field(default_factory=dict)
    busy: Counter = field(default_factory=Counter)
    cursor: int = 0
    version: int = 0  # bumped by every change of a design (caches key on it)

    def put(self, view: design_pb2.Design) -> None:
        if view.id not in self.designs:
            self.order.append(view.id)
        self.designs[view.id] = view
        if view.results:
            self.verified[view.id] = None
        if view.fingerprint:
            self.fingerprints.setdefault(view.fingerprint, view.id)
        self.version += 1


class BusyPairs:
    """The (design, rung) pairs of an experiment's VERIFY jobs that are not cancelled, as a
    live read-only view (`pair in busy`), so a lease copies nothing."""

    def __init__(self, counts: Counter):
        self._counts = counts

    def __contains__(self, pair: object) -> bool:
        return self._counts.get(pair, 0) > 0


class IndexedStore:
    """A Store with the tree index in front (see the module docstring)."""

    def __init__(self, store: Store):
        self._store = store
        self._trees: dict[str, _Tree] = {}
        self._lock = threading.RLock()

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _tree(self, experiment: str) -> _Tree:
        with self._lock:
            tree = self._trees.get(experiment)
            if tree is None:
                tree = _Tree()
                for design in self._store.experiment_designs(experiment):
                    tree.put(scoring_view(design))
                tree.busy.update(self._store.verify_keys(experiment))
                self._trees[experiment] = tree
            return tree

    def _loaded(self, experiment: str) -> _Tree | None:
        with self._lock:
            return self._trees.get(experiment)

    # -- reads served by the index ----------------------------------------------------
    def experiment_designs(self, experiment: str) -> list[design_pb2.Design]:
        tree = self._tree(experiment)
        with self._lock:
            return [tree.designs[i] for i in tree.order]

    def verify_keys(self, experiment: str) -> BusyPairs:
        return BusyPairs(self._tree(experiment).busy)

    def design_count(self, experiment: str) -> int:
        return len(self._tree(experiment).order)

    def verified_count(self, experiment: str) -> int:
        return len(self._tree(experiment).verified)

    def version(self, experiment: str) -> int:
        return self._tree(experiment).version

    def fingerprint_owner(self, experiment: str, fingerprint: str) -> str | None:
        return self._tree(experiment).fingerprints.get(fingerprint)

    def verify_pool(self, experiment: str, lowest: str, lowest_open: bool
                    ) -> list[design_pb2.Design]:
        """Designs among which selection.choose_verify_target chooses the same target as
        among all: the oldest design still to verify at the lowest rung if there is one
        (the lowest rung comes first, oldest first), else the verified designs (only they
        can move up a rung or be repeated)."""
        tree = self._tree(experiment)
        with self._lock:
            if lowest_open:
                i = tree.cursor
                while i < len(tree.order):
                    d = tree.designs[tree.order[i]]
                    done = (d.state == design_pb2.DESIGN_STATE_FAILED
                            or any(r.rung == lowest for r in d.results))
                    if done and i == tree.cursor:
                        tree.cursor += 1  # never a candidate at the lowest rung again
                    elif not done and d.state in VERIFIABLE and tree.busy[(d.id, lowest)] <= 0:
                        return [d]
                    i += 1
            return [tree.designs[i] for i in tree.verified]

    # -- writes: through to the store, then into the index ----------------------------
    def insert_design(self, design: design_pb2.Design) -> None:
        self._store.insert_design(design)
        self._put([design])

    def update_designs(self, designs: list[design_pb2.Design]) -> None:
        self._store.update_designs(designs)
        self._put(designs)

    def update_scores(self, designs: list[design_pb2.Design]) -> None:
        self._store.update_scores(designs)
        with self._lock:
            for d in designs:
                tree = self._trees.get(d.experiment)
                view = tree.designs.get(d.id) if tree else None
                if view is not None and view is not d:
                    view.fitness, view.confidence = d.fitness, d.confidence
                    view.quadrant, view.fitness_stderr = d.quadrant, d.fitness_stderr
                if tree is not None:
                    tree.version += 1

    def record_result(self, design: design_pb2.Design, rung: str, limit: int) -> bool:
        if not self._store.record_result(design, rung, limit):
            return False
        self._put([design])
        return True

    def insert_job(self, job: job_pb2.Job, dedupe_key: str = "") -> None:
        self._store.insert_job(job, dedupe_key)
        self._count_job(None, job)

    def claim_job(self, job: job_pb2.Job, expect: job_pb2.Job | None, dedupe_key: str = "",
                  reserve: tuple[str, str, int] | None = None) -> bool:
        if not self._store.claim_job(job, expect, dedupe_key, reserve):
            return False
        self._count_job(expect, job)
        return True

    def settle_job(self, new: job_pb2.Job, expect: job_pb2.Job, ledger: str = "",
                   design: design_pb2.Design | None = None, release_dedupe: bool = False) -> bool:
        if not self._store.settle_job(new, expect, ledger, design, release_dedupe):
            return False
        if design is not None:
            self._put([design])
        self._count_job(expect, new)
        return True

    def update_experiment(self, exp) -> None:
        self._store.update_experiment(exp)
        with self._lock:  # the lowest rung may have changed: scan from the start again
            tree = self._trees.get(exp.name)
            if tree is not None:
                tree.cursor = 0
                tree.version += 1

    def _put(self, designs: list[design_pb2.Design]) -> None:
        with self._lock:
            for d in designs:
                tree = self._trees.get(d.experiment)
                if tree is not None:
                    tree.put(scoring_view(d))

    def _count_job(self, before: job_pb2.Job | None, after: job_pb2.Job) -> None:
        """Keep the busy pairs: a VERIFY job counts unless it is cancelled."""
        if after.kind != job_pb2.JOB_KIND_VERIFY:
            return
        tree = self._loaded(after.experiment)
        if tree is None:
            return
        key = (after.design_id, after.rung)
        was = before is not None and before.state != job_pb2.JOB_STATE_CANCELLED
        now = after.state != job_pb2.JOB_STATE_CANCELLED
        with self._lock:
            tree.busy[key] += int(now) - int(was)

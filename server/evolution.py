"""Experiments, designs and results: the evolution tree the coordinator keeps.

Everything arrives as data (trees, source text, metrics); nothing here runs design code.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from genesys.v1 import design_pb2, evolution_pb2, experiment_pb2

from . import experiment_update, ledger, selection
from .config import ServerConfig
from .errors import (
    FailedPrecondition,
    FunctionalDuplicate,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    check_range,
)
from .events import EventHub, WorkSignal
from .experiment_config import validate, with_defaults
from .gau_text import parse_source, parse_tree
from .results import check_stderr
from .seeds import available, load_seeds
from .store import DesignQuery, Store, basic_view

D, EV = design_pb2, design_pb2
SUBMITTABLE = (D.DESIGN_STATE_PROPOSED, D.DESIGN_STATE_IMPLEMENTED)
SYNC_RESCORE_DESIGNS = 200  # larger trees are rescored in the background
RANKING_SECONDS = 1.0       # a changing leaderboard is re-sorted at most this often


def now_ts(message, field: str, seconds: float | None = None) -> None:
    getattr(message, field).FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))


class Evolution:
    def __init__(self, store: Store, hub: EventHub, work: WorkSignal, config: ServerConfig,
                 seeds_dir: Path | None):
        self.store, self.hub, self.work, self.config = store, hub, work, config
        self.seeds_dir = seeds_dir
        self._experiments: dict[str, experiment_pb2.Experiment] = {}
        self._lock = threading.RLock()
        self._rescoring = threading.Lock()  # one rescore at a time: none writes stale scores
        self._dirty: set[str] = set()       # experiments to rescore in the background
        self._rankings: dict[tuple[str, str], tuple] = {}  # leaderboard cache
        self._draws = 0

    # -- experiments ------------------------------------------------------------------
    def experiment(self, name: str) -> experiment_pb2.Experiment:
        with self._lock:
            exp = self._experiments.get(name)
        if exp is None:
            exp = self.store.get_experiment(name)
            if exp is None:
                raise NotFound(f"no experiment {name!r}")
            with self._lock:
                self._experiments[name] = exp
        return exp

    def experiments(self) -> list[experiment_pb2.Experiment]:
        found = self.store.list_experiments(limit=10_000)
        with self._lock:
            for exp in found:
                self._experiments.setdefault(exp.name, exp)
            return [self._experiments[e.name] for e in found]

    def _defaults(self, config: experiment_pb2.ExperimentConfig) -> experiment_pb2.ExperimentConfig:
        s = self.config.scheduler
        return with_defaults(config, available(self.seeds_dir), s.lease_seconds, s.max_attempts,
                             s.default_open_design_jobs)

    def create_experiment(self, req: evolution_pb2.CreateExperimentRequest, caller: str
                          ) -> tuple[experiment_pb2.Experiment, list[str]]:
        config = self._defaults(req.config)
        validate(req.name, config)
        if len(req.description) > 10_000:
            raise InvalidArgument("description", "longer than 10000 characters")
        seeds = list(req.seeds) or load_seeds(list(config.seeds), self.seeds_dir)
        digests: dict[str, int] = {}
        for i, seed in enumerate(seeds):  # check every seed before anything is stored
            parsed = (parse_tree(seed.tree, f"seeds[{i}].tree") if seed.HasField("tree")
                      else parse_source(seed.source, seed.name, f"seeds[{i}].source"))
            if parsed.digest in digests:
                raise InvalidArgument(f"seeds[{i}]", f"same design as seeds[{digests[parsed.digest]}]")
            digests[parsed.digest] = i
        exp = experiment_pb2.Experiment(name=req.name, description=req.description, config=config,
                                        config_version=1, state=experiment_pb2.EXPERIMENT_STATE_ACTIVE)
        now_ts(exp, "created_at")
        exp.updated_at.CopyFrom(exp.created_at)
        self.store.create_experiment(exp)
        for rung in config.ladder.rungs:
            self.store.set_budget(exp.name, rung.name, rung.budget)
        with self._lock:
            self._experiments[exp.name] = exp
        ids = []
        for i, seed in enumerate(seeds):
            request = evolution_pb2.SubmitDesignRequest(
                experiment=exp.name, name=seed.name, source=seed.source, digest=seed.digest,
                trace=D.DesignTrace(operation=D.DESIGN_OPERATION_SEED))
            if seed.HasField("tree"):
                request.tree.CopyFrom(seed.tree)
            ids.append(self.submit_design(request, caller, seed=True, field=f"seeds[{i}]").id)
        self.hub.publish(EV.EVENT_KIND_EXPERIMENT_CREATED, exp.name,
                         message=f"seeds={len(ids)}", data={"seed_design_ids": ids})
        self.work.notify()
        return exp, ids

    def update_experiment(self, req: evolution_pb2.UpdateExperimentRequest
                          ) -> tuple[experiment_pb2.Experiment, list[str]]:
        """The updated experiment and the rungs its new ladder removed. Everything is
        checked before the ledger and then the experiment are written."""
        current = self.experiment(req.name)
        exp = experiment_update.changed(current, req)
        removed: list[str] = []
        if req.HasField("config") or any(p.startswith("config") for p in req.update_mask.paths):
            exp.config.CopyFrom(self._defaults(exp.config))
            validate(req.name, exp.config)
            exp.config_version += 1
            for rung, total in experiment_update.budget_changes(
                    current.config, exp.config, self.store.budget(exp.name)).items():
                self.store.set_budget(exp.name, rung, total)
            removed = experiment_update.removed_rungs(current.config, exp.config)
        now_ts(exp, "updated_at")
        self.store.update_experiment(exp)
        with self._lock:
            self._experiments[exp.name] = exp
        self.hub.publish(EV.EVENT_KIND_EXPERIMENT_UPDATED, exp.name,
                         message=f"config_version={exp.config_version}")
        self.work.notify()
        return exp, removed

    # -- designs ----------------------------------------------------------------------
    def submit_design(self, req: evolution_pb2.SubmitDesignRequest, caller: str, *,
                      seed: bool = False, field: str = "",
                      lease_check: Callable[[str, int], None] | None = None) -> design_pb2.Design:
        prefix = f"{field}." if field else ""
        exp = self.experiment(req.experiment)
        if exp.state == experiment_pb2.EXPERIMENT_STATE_FINISHED:
            raise FailedPrecondition(f"experiment {exp.name!r} is finished")
        limits = self.config.limits
        if len(req.name) > 200:
            raise InvalidArgument(prefix + "name", "longer than 200 characters")
        if len(req.source.encode()) > limits.max_code_bytes:
            raise InvalidArgument(prefix + "source", f"{len(req.source.encode())} bytes > limit "
                                  f"{limits.max_code_bytes}")
        if req.HasField("tree"):
            code_bytes = sum(len(u.code.encode()) for u in req.tree.units)
            if code_bytes > limits.max_code_bytes:
                raise InvalidArgument(prefix + "tree.units",
                                      f"{code_bytes} bytes of code > limit {limits.max_code_bytes}")
            parsed = parse_tree(req.tree, prefix + "tree")
        elif req.source:
            parsed = parse_source(req.source, req.name, prefix + "source")
        else:
            raise InvalidArgument(prefix + "tree", "a design needs a tree or its source")
        if req.trace.ByteSize() > limits.max_trace_bytes:
            raise InvalidArgument(prefix + "trace", f"{req.trace.ByteSize()} bytes > limit "
                                  f"{limits.max_trace_bytes}")
        digest = parsed.digest
        if req.digest and req.digest != digest:
            raise InvalidArgument(prefix + "digest", f"does not match the tree (expected {digest})")
        if req.state and req.state not in SUBMITTABLE:
            raise InvalidArgument(prefix + "state", "only PROPOSED or IMPLEMENTED may be submitted")
        for i, parent in enumerate(req.parents):
            found = self.store.get_design(parent)
            if found is None or found.experiment != exp.name:
                raise InvalidArgument(f"{prefix}parents[{i}]",
                                      f"no design {parent!r} in experiment {exp.name!r}")
        if req.job_id:
            if lease_check is None:
                raise InvalidArgument(prefix + "job_id", "only workers submit under a job")
            lease_check(req.job_id, req.fencing_token)
        fingerprint, label = trace_field(req.trace.check_report_json, "fingerprint"), \
            trace_field(req.trace.metadata_json, "label")[:200]
        if fingerprint:
            same = self.store.fingerprint_owner(exp.name, fingerprint)
            if same is not None:
                raise FunctionalDuplicate(same, fingerprint)
        design = design_pb2.Design(
            id="d" + secrets.token_hex(6), experiment=exp.name, name=req.name or parsed.name,
            digest=digest, tree=parsed.to_proto(), source=req.source or parsed.to_source(),
            parents=list(req.parents),
            trace=req.trace, state=req.state or D.DESIGN_STATE_IMPLEMENTED, seed=seed,
            submitted_by=caller, job_id=req.job_id, fingerprint=fingerprint, label=label)
        now_ts(design, "created_at")
        self.store.insert_design(design)
        self._rescore(exp)
        self.hub.publish(EV.EVENT_KIND_DESIGN_SUBMITTED, exp.name, design_id=design.id,
                         job_id=req.job_id, message=f"name={design.name}")
        self.work.notify()
        return self.store.get_design(design.id)

    def get_design(self, design_id: str) -> design_pb2.Design:
        design = self.store.get_design(design_id)
        if design is None:
            raise NotFound(f"no design {design_id!r}")
        return design

    def list_designs(self, req: evolution_pb2.ListDesignsRequest
                     ) -> tuple[list[design_pb2.Design], int]:
        self.experiment(req.experiment)
        check_range("limit", req.limit, 0, 1000)
        check_range("offset", req.offset, 0, 2**31)
        designs, total = self.store.list_designs(DesignQuery(
            req.experiment, req.state, req.quadrant, req.verified_rung, req.parent, req.digest,
            req.limit or 100, req.offset))
        if req.view != D.DESIGN_VIEW_FULL:
            designs = [basic_view(d) for d in designs]
        return designs, total

    def lineage(self, req: evolution_pb2.GetLineageRequest) -> evolution_pb2.GetLineageResponse:
        check_range("depth", req.depth, 0, 10_000)
        root = self.get_design(req.design_id)
        designs, edges = {root.id: basic_view(root)}, set()
        if req.direction != evolution_pb2.LINEAGE_DIRECTION_DESCENDANTS:
            self._walk(root, True, req.depth, designs, edges)
        if req.direction != evolution_pb2.LINEAGE_DIRECTION_ANCESTORS:
            self._walk(root, False, req.depth, designs, edges)
        return evolution_pb2.GetLineageResponse(
            designs=list(designs.values()),
            edges=[evolution_pb2.LineageEdge(parent=p, child=c) for p, c in sorted(edges)])

    def _walk(self, root: design_pb2.Design, up: bool, max_depth: int,
              designs: dict[str, design_pb2.Design], edges: set[tuple[str, str]]) -> None:
        """Breadth-first over parents (up) or children, collecting designs and edges."""
        frontier, depth = [root], 0
        while frontier and (not max_depth or depth < max_depth):
            depth += 1
            following = []
            for d in frontier:
                others = list(d.parents) if up else self.store.children_of(d.id)
                for other in others:
                    edges.add((other, d.id) if up else (d.id, other))
                    found = None if other in designs else self.store.get_design(other)
                    if found is not None:
                        designs[other] = basic_view(found)
                        following.append(found)
            frontier = following

    def leaderboard(self, req: evolution_pb2.GetLeaderboardRequest
                    ) -> list[evolution_pb2.LeaderboardEntry]:
        exp = self.experiment(req.experiment)
        check_range("limit", req.limit, 0, 10_000)
        if req.rung and req.rung not in {r.name for r in exp.config.ladder.rungs}:
            raise InvalidArgument("rung", f"{req.rung!r} is not a rung of {exp.name!r}")
        rows, tied = self._ranking(exp, req.rung)
        return [evolution_pb2.LeaderboardEntry(
            rank=tied.get(d.id, i) + 1, design_id=d.id, name=d.name, fitness=d.fitness,
            confidence=d.confidence, quadrant=d.quadrant,
            metrics=dict(result.metrics) if result else {}, score=score)
            for i, (score, d, result) in enumerate(rows[:req.limit or 20])]

    def _ranking(self, exp: experiment_pb2.Experiment, rung: str) -> tuple[list, dict[str, int]]:
        """The sorted leaderboard rows of a rung ("" = by fitness) and the tied ranks,
        cached until a design or a score of the experiment changes; for a large tree
        (rescored in the background anyway) at most RANKING_SECONDS old while it changes."""
        version = self.store.version(exp.name)
        key = (exp.name, rung)
        with self._lock:
            cached = self._rankings.get(key)
        large = self.store.design_count(exp.name) > SYNC_RESCORE_DESIGNS
        if cached is not None and (cached[0] == version or large and time.monotonic()
                                   - cached[1] < RANKING_SECONDS):
            return cached[2], cached[3]
        rows = []
        for d in self.store.experiment_designs(exp.name):
            result = next((r for r in d.results if r.rung == rung), None)
            if rung and result is None:
                continue
            score = d.fitness if not rung else self._rung_score(exp, result)
            rows.append((score, d, result))
        rows.sort(key=lambda row: (-row[0], -row[1].confidence, row[1].id))
        # by fitness, designs within their combined standard errors share a rank
        tied = (selection.tied_ranks([d for _, d, _ in rows], selection.knobs(exp.config).z)
                if not rung else {})
        with self._lock:
            self._rankings[key] = (version, time.monotonic(), rows, tied)
        return rows, tied

    @staticmethod
    def _rung_score(exp: experiment_pb2.Experiment, result: design_pb2.RungResult) -> float:
        """Mean advantage over random of the suite's benchmarks at one rung."""
        benches = [b for b in exp.config.benchmarks if b.name in result.metrics]
        if not benches:
            values = list(result.metrics.values())
            return sum(values) / len(values) if values else 0.0
        adv = [(b.random_baseline - result.metrics[b.name]) if b.lower_is_better
               else (result.metrics[b.name] - b.random_baseline) for b in benches]
        return sum(adv) / len(adv)

    # -- results ----------------------------------------------------------------------
    def check_result(self, exp: experiment_pb2.Experiment, result: design_pb2.RungResult,
                     field: str = "result") -> None:
        if result.rung not in {r.name for r in exp.config.ladder.rungs}:
            raise InvalidArgument(f"{field}.rung", f"{result.rung!r} is not a rung of {exp.name!r}")
        check_metrics(dict(result.metrics), result.metrics_json, self.config.limits.max_metrics_bytes,
                      field)
        check_stderr(result, field)

    def with_result(self, design: design_pb2.Design, result: design_pb2.RungResult
                    ) -> design_pb2.Design:
        """A copy of the design with the rung's result replaced and its state VERIFIED."""
        out = design_pb2.Design()
        out.CopyFrom(design)
        kept = [r for r in out.results if r.rung != result.rung]
        out.ClearField("results")
        out.results.extend(kept)
        out.results.append(result)
        if not out.results[-1].HasField("reported_at"):
            now_ts(out.results[-1], "reported_at")
        out.state = D.DESIGN_STATE_VERIFIED
        return out

    def report_result(self, req: evolution_pb2.ReportResultRequest) -> design_pb2.Design:
        design = self.get_design(req.design_id)
        exp = self.experiment(design.experiment)
        self.check_result(exp, req.result)
        rung = req.result.rung
        updated = self.with_result(design, req.result)
        if rung in {r.rung for r in design.results}:  # a replaced result spends nothing
            self.store.update_designs([updated])
        else:
            limit = ledger.released(self.store.budget(exp.name),
                                    [r.name for r in exp.config.ladder.rungs],
                                    exp.config.ladder.selection_ratio)[rung]
            if not self.store.record_result(updated, rung, limit):
                raise ResourceExhausted(f"the budget of rung {rung} is spent "
                                        f"({limit} released)")
        self.after_result(exp, design.id, req.result.rung)
        return basic_view(self.get_design(design.id))

    def record_fingerprints(self, experiment: str, fingerprints: object) -> None:
        """Fingerprints a DESIGN job measured for designs that had none (the seeds, which
        no checker ran on here): {design id: fingerprint}. Wrong shapes are ignored."""
        if not isinstance(fingerprints, dict):
            return
        changed = []
        for design_id, fingerprint in fingerprints.items():
            found = self.store.get_design(str(design_id))
            if (found is not None and found.experiment == experiment and not found.fingerprint
                    and isinstance(fingerprint, str) and 0 < len(fingerprint) <= 200):
                found.fingerprint = fingerprint
                changed.append(found)
        if changed:
            self.store.update_designs(changed)

    def after_result(self, exp: experiment_pb2.Experiment, design_id: str, rung: str) -> None:
        self._rescore(exp)
        self.hub.publish(EV.EVENT_KIND_RESULT_REPORTED, exp.name, design_id=design_id,
                         message=f"rung={rung}")
        self.work.notify()

    def _rescore(self, exp: experiment_pb2.Experiment) -> None:
        """Rescore now while the tree is small; a large one is rescored in the background
        (`rescore_pending`), so a submit or a result costs the same at any size."""
        if self.store.design_count(exp.name) <= SYNC_RESCORE_DESIGNS:
            self._rescore_now(exp.name)
        else:
            with self._lock:
                self._dirty.add(exp.name)

    def _rescore_now(self, name: str) -> None:
        with self._rescoring:
            exp = self.experiment(name)
            designs = self.store.experiment_designs(name)
            changed = selection.rescore(designs, exp.config)
            if changed:
                self.store.update_scores(changed)

    def rescore_pending(self) -> int:
        """Rescore the experiments changed since the last call; returns how many."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for name in dirty:
            self._rescore_now(name)
        return len(dirty)

    def rescore_all(self) -> None:
        """Recompute derived scores (after a restart, fitness is rebuilt from results)."""
        for exp in self.experiments():
            self._rescore_now(exp.name)

    # -- selection --------------------------------------------------------------------
    def rng(self, exp: experiment_pb2.Experiment, seed: int = 0) -> random.Random:
        if seed:
            return random.Random(seed)
        with self._lock:
            self._draws += 1
            return random.Random(f"{exp.config.selection.seed}:{exp.name}:{self._draws}")

    def select_parents(self, req: evolution_pb2.SelectParentsRequest
                       ) -> tuple[list[design_pb2.Design], str]:
        exp = self.experiment(req.experiment)
        check_range("count", req.count, 0, 16)
        op = D.DesignOperation.Name(req.operation).removeprefix("DESIGN_OPERATION_").lower()
        count = req.count or selection.PARENT_COUNT.get(op, 1)
        parents, reason = selection.select_parents(self.store.experiment_designs(exp.name), count,
                                                   exp.config, self.rng(exp, req.seed))
        return [basic_view(p) for p in parents], reason


def trace_field(text: str, key: str) -> str:
    """A string field of a JSON object kept in a trace (check report, metadata); "" when
    absent or not a string."""
    try:
        value = json.loads(text).get(key) if text else None
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def check_metrics(metrics: dict[str, float], metrics_json: str, limit: int, field: str) -> None:
    for name, value in metrics.items():
        if not name or len(name) > 200:
            raise InvalidArgument(f"{field}.metrics", "metric names must have 1..200 characters")
        if not math.isfinite(value):
            raise InvalidArgument(f"{field}.metrics[{name}]", f"not a finite number: {value}")
    if len(metrics_json.encode()) > limit:
        raise InvalidArgument(f"{field}.metrics_json", f"{len(metrics_json.encode())} bytes > limit {limit}")
    if metrics_json:
        try:
            json.loads(metrics_json)
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"{field}.metrics_json", f"not JSON: {e}") from None

"""Selection (paper section 4.3): fitness, confidence, quadrants, parents, verify targets.

Pure functions over Design messages and an experiment config; randomness comes only from
the `random.Random` passed in, so a seed makes every choice reproducible.

- Fitness: per rung and benchmark, the advantage over random guessing is min-max
  normalised across the designs verified at that rung. A benchmark counts at a rung only
  where it carries signal: with standard errors (RungResult.stderr), the best design beats
  random by more than ``z`` standard errors and the best and worst designs differ by more
  than ``z`` combined standard errors; without them, the best design beats random by
  `min_advantage`. A design's rung score is the weighted mean over counted benchmarks, its
  fitness the mean over its verified rungs, and ``fitness_stderr`` the propagated error.
- Ties: a design whose fitness is within ``z`` combined standard errors of the design
  leading its group ranks with that leader (same rank, same selection weight, same side of
  the quadrant cut).
- Confidence: proposed +1, implemented +1, then rung k of the ladder (0-based) adds k + 1,
  and each repeat verification there (another training seed) adds 1.
- Quadrants: good = tied-rank fitness above that of the design just outside the top
  `fitness_cut` fraction; confident likewise with `confidence_cut` (ties at the cut stay out).
- Parents: by quadrant and rank (the paper's policy), uniformly (ablation), or by Pareto
  rank over (fitness, training throughput, peak memory) at the lowest rung.
- Repeats (``extra_json`` {"selection": {"repeats": N}}): designs in the good quadrant are
  verified up to N more times per rung with new training seeds; results are merged
  (merge_repeat) so their intervals narrow. Verification k of a design at a rung trains
  with seed ``training_seed + k`` ("training_seed" in the same object, default 42).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from genesys.v1 import design_pb2, experiment_pb2

Q = design_pb2
PARENT_QUADRANTS = (Q.QUADRANT_GOOD_CONFIDENT, Q.QUADRANT_POOR_CONFIDENT,
                    Q.QUADRANT_GOOD_UNCONFIDENT, Q.QUADRANT_POOR_UNCONFIDENT)
VERIFY_QUADRANTS = (Q.QUADRANT_GOOD_UNCONFIDENT, Q.QUADRANT_POOR_UNCONFIDENT,
                    Q.QUADRANT_GOOD_CONFIDENT, Q.QUADRANT_POOR_CONFIDENT)
VERIFIABLE = (Q.DESIGN_STATE_IMPLEMENTED, Q.DESIGN_STATE_VERIFIED)
DEFAULT_Z = 2.0
BASE_TRAINING_SEED = 42  # the engine's default training seed


@dataclass(frozen=True)
class Knobs:
    """Selection settings kept in ``extra_json`` under "selection" (no proto field)."""

    z: float = DEFAULT_Z  # standard errors a difference must exceed to count
    repeats: int = 0  # extra verifications of good designs per rung, with new seeds
    training_seed: int = BASE_TRAINING_SEED  # of a design's first verification at a rung


KNOB_TYPES = {"z": (int, float), "repeats": int, "training_seed": int}


def knobs(config: experiment_pb2.ExperimentConfig) -> Knobs:
    """The experiment's selection knobs (validated by experiment_config.validate)."""
    try:
        extra = json.loads(config.extra_json or "{}")
    except ValueError:
        return Knobs()
    found = extra.get("selection") if isinstance(extra, dict) else None
    if not isinstance(found, dict):
        return Knobs()
    return Knobs(**{k: v for k, v in found.items() if k in KNOB_TYPES})


def knob_problem(value: object) -> str | None:
    """Why ``extra_json["selection"]`` is not usable, or None."""
    if not isinstance(value, dict):
        return "must be a JSON object"
    for key, item in value.items():
        if key not in KNOB_TYPES:
            return f"unknown key {key!r} (known: {', '.join(KNOB_TYPES)})"
        if isinstance(item, bool) or not isinstance(item, KNOB_TYPES[key]):
            return f"{key} must be a number"
    if not 0 <= value.get("z", DEFAULT_Z) <= 10:
        return "z must be within [0, 10]"
    if not 0 <= value.get("repeats", 0) <= 16:
        return "repeats must be within [0, 16]"
    if not 0 <= value.get("training_seed", 0) < 2**31:
        return "training_seed must be within [0, 2**31)"
    return None


# --- fitness ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    value: float
    stderr: float = 0.0


def rescore(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig
            ) -> list[design_pb2.Design]:
    """Recompute fitness (+ stderr), confidence and quadrant in place; return the designs
    that changed."""
    def derived(d: design_pb2.Design) -> tuple:
        return d.fitness, d.fitness_stderr, d.confidence, d.quadrant

    before = {d.id: derived(d) for d in designs}
    z = knobs(config).z
    fitness = _fitness(designs, config, z)
    ladder = [r.name for r in config.ladder.rungs]
    for d in designs:
        score = fitness.get(d.id, Score(0.0))
        d.fitness, d.fitness_stderr = score.value, score.stderr
        d.confidence = confidence(d, ladder)
    ranks = tied_ranks(designs, z)
    good = _top(designs, lambda d: -ranks[d.id], config.selection.fitness_cut)
    confident = _top(designs, lambda d: d.confidence, config.selection.confidence_cut)
    for d in designs:
        d.quadrant = {(True, True): Q.QUADRANT_GOOD_CONFIDENT,
                      (True, False): Q.QUADRANT_GOOD_UNCONFIDENT,
                      (False, True): Q.QUADRANT_POOR_CONFIDENT,
                      (False, False): Q.QUADRANT_POOR_UNCONFIDENT}[(d.id in good, d.id in confident)]
    return [d for d in designs if before[d.id] != derived(d)]


def confidence(design: design_pb2.Design, ladder: list[str]) -> int:
    value = 1 if design.state == Q.DESIGN_STATE_PROPOSED else 2
    results = {r.rung: r for r in design.results}
    for i, rung in enumerate(ladder):
        if rung in results:
            value += i + 1 + max(0, results[rung].repeats - 1)
    return value


def _benchmarks(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig
                ) -> dict[str, experiment_pb2.Benchmark]:
    benchmarks = {b.name: b for b in config.benchmarks}
    reported = {k for d in designs for r in d.results for k in r.metrics}
    if not benchmarks.keys() & reported:  # suite not reported at all: use every metric
        benchmarks = {k: experiment_pb2.Benchmark(name=k) for k in sorted(reported)}
    return benchmarks


def benchmark_counts(scores: dict[str, Score], z: float, min_advantage: float) -> bool:
    """Whether a benchmark's advantages over random at one rung carry signal (module doc)."""
    if not scores:
        return False
    best = max(scores.values(), key=lambda s: s.value)
    worst = min(scores.values(), key=lambda s: s.value)
    if not any(s.stderr for s in scores.values()):
        return best.value >= min_advantage
    if best.value <= z * best.stderr:
        return False
    return len(scores) == 1 or best.value - worst.value > z * math.hypot(best.stderr, worst.stderr)


def rung_scores(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig,
                rung: str, z: float | None = None) -> dict[str, Score]:
    """Each verified design's score at one rung (0..1, weighted over counted benchmarks)."""
    z = knobs(config).z if z is None else z
    benchmarks = _benchmarks(designs, config)
    rows = {d.id: r for d in designs for r in d.results if r.rung == rung}
    totals = {i: 0.0 for i in rows}
    variances = {i: 0.0 for i in rows}
    weight_sum = 0.0
    for name, bench in benchmarks.items():
        adv = {i: Score(_advantage(r.metrics[name], bench), r.stderr.get(name, 0.0))
               for i, r in rows.items() if name in r.metrics}
        if not benchmark_counts(adv, z, config.selection.min_advantage):
            continue
        lo, hi = min(a.value for a in adv.values()), max(a.value for a in adv.values())
        weight = bench.weight or 1.0
        weight_sum += weight
        for i, a in adv.items():
            totals[i] += weight * ((a.value - lo) / (hi - lo) if hi > lo else 1.0)
            variances[i] += (weight * a.stderr / (hi - lo)) ** 2 if hi > lo else 0.0
    if not weight_sum:
        return {}
    return {i: Score(totals[i] / weight_sum, math.sqrt(variances[i]) / weight_sum) for i in rows}


def _fitness(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig,
             z: float) -> dict[str, Score]:
    per_design: dict[str, list[Score]] = {}
    for rung in config.ladder.rungs:
        for i, score in rung_scores(designs, config, rung.name, z).items():
            per_design.setdefault(i, []).append(score)
    return {i: Score(sum(s.value for s in scores) / len(scores),
                     math.sqrt(sum(s.stderr**2 for s in scores)) / len(scores))
            for i, scores in per_design.items()}


def _advantage(score: float, bench: experiment_pb2.Benchmark) -> float:
    return bench.random_baseline - score if bench.lower_is_better else score - bench.random_baseline


def tied_ranks(designs: list[design_pb2.Design], z: float = DEFAULT_Z) -> dict[str, int]:
    """Competition ranks (0 = best) by fitness, where a design within `z` combined standard
    errors of the leader of its group shares the leader's rank."""
    ordered = sorted(designs, key=lambda d: (-d.fitness, d.id))
    ranks: dict[str, int] = {}
    leader: design_pb2.Design | None = None
    for position, d in enumerate(ordered):
        if leader is None or leader.fitness - d.fitness > z * math.hypot(leader.fitness_stderr,
                                                                       d.fitness_stderr):
            leader, rank = d, position
        ranks[d.id] = rank
    return ranks


def _top(designs: list[design_pb2.Design], key, fraction: float) -> set[str]:
    """Ids whose value beats the value just outside the top `fraction` (ties stay out)."""
    values = sorted((key(d) for d in designs), reverse=True)
    if not values:
        return set()
    k = max(1, math.ceil(len(values) * fraction))
    cut = values[k] if k < len(values) else values[-1]
    return {d.id for d in designs if key(d) > cut}


# --- Pareto -----------------------------------------------------------------------------------


def objectives(design: design_pb2.Design, rung: str) -> tuple[float, float, float] | None:
    """(fitness, tokens/s, -peak memory) from the design's result at `rung` (larger is
    better in each), or None without a result there."""
    result = next((r for r in design.results if r.rung == rung), None)
    if result is None:
        return None
    return design.fitness, result.tokens_per_second, -float(result.peak_memory_bytes)


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


def pareto_ranks(points: dict[str, tuple[float, ...]]) -> dict[str, int]:
    """Pareto rank (Fonseca and Fleming): how many designs dominate each one; 0 = on the
    Pareto front. One pass over the pairs, so a lease stays cheap with many designs."""
    ordered = sorted(points.items(), key=lambda item: item[1], reverse=True)
    ranks = dict.fromkeys(points, 0)
    for k, (i, p) in enumerate(ordered):
        # only designs sorted before p (lexicographically no smaller) can dominate it
        ranks[i] = sum(dominates(q, p) for _, q in ordered[:k])
    return ranks


def _pareto_order(designs: list[design_pb2.Design], ladder: list[str]) -> dict[str, int]:
    points = {d.id: p for d in designs if ladder and (p := objectives(d, ladder[0])) is not None}
    ranks = pareto_ranks(points)
    worst = max(ranks.values(), default=-1) + 1
    return {d.id: ranks.get(d.id, worst) for d in designs}


# --- parents and verify targets ---------------------------------------------------------------


def _ranked_pick(candidates: list[design_pb2.Design], count: int, rng: random.Random,
                 noise: float, ranks: dict[str, int]) -> list[design_pb2.Design]:
    """Sample without replacement, weight by rank among the candidates plus noise; designs
    of equal rank (`ranks`: tied or Pareto ranks) weigh the same."""
    ranked = sorted(candidates, key=lambda d: (ranks[d.id], -d.confidence, d.id))
    order: dict[str, int] = {}
    for position, d in enumerate(ranked):
        if not position or ranks[d.id] != ranks[ranked[position - 1].id]:
            first = position
        order[d.id] = first
    n = len(ranked)
    pool = [(d, (n - order[d.id]) / n + noise * rng.random()) for d in ranked]
    picked = []
    while pool and len(picked) < count:
        x = rng.random() * sum(w for _, w in pool)
        for j, (d, w) in enumerate(pool):
            x -= w
            if x <= 0 or j == len(pool) - 1:
                picked.append(d)
                pool.pop(j)
                break
    return picked


def _quadrant_order(preferred: tuple[int, ...], p_explore: float, rng: random.Random) -> list[int]:
    """The quadrants to try in order: the explore quadrant first with probability p."""
    first, explore = preferred[0], preferred[1]
    order = [explore, first] if rng.random() < p_explore else [first, explore]
    return order + [q for q in preferred if q not in order]


def select_parents(designs: list[design_pb2.Design], count: int, config: experiment_pb2.ExperimentConfig,
                   rng: random.Random) -> tuple[list[design_pb2.Design], str]:
    """Parents for a DESIGN job, and the reason (quadrant) they were drawn from."""
    usable = [d for d in designs if d.state != Q.DESIGN_STATE_FAILED] or list(designs)
    if count <= 0 or not usable:
        return [], "no parents"
    if config.selection.parent_policy == "uniform":  # the ablation baseline
        return rng.sample(usable, min(count, len(usable))), "uniform"
    noise = config.selection.noise
    ranks = tied_ranks(usable, knobs(config).z)
    if not any(d.results for d in usable):
        seeds = [d for d in usable if d.seed] or usable
        return _ranked_pick(seeds, count, rng, noise, ranks), "seeds (nothing ranked yet)"
    if config.selection.parent_policy == "pareto":
        fronts = _pareto_order(usable, [r.name for r in config.ladder.rungs])
        return _ranked_pick(usable, count, rng, noise, fronts), "pareto rank"
    for quadrant in _quadrant_order(PARENT_QUADRANTS, config.selection.p_explore, rng):
        pool = [d for d in usable if d.quadrant == quadrant]
        if len(pool) >= count or quadrant == PARENT_QUADRANTS[-1] and pool:
            picked = _ranked_pick(pool, count, rng, noise, ranks)
            if len(picked) < count:  # top up from everything else
                rest = [d for d in usable if d not in picked]
                picked += _ranked_pick(rest, count - len(picked), rng, noise, ranks)
            return picked, Q.Quadrant.Name(quadrant).removeprefix("QUADRANT_").lower()
    return _ranked_pick(usable, count, rng, noise, ranks), "all designs"


def next_rung(design: design_pb2.Design, ladder: list[str]) -> str | None:
    """The lowest ladder rung the design has no result at."""
    verified = {r.rung for r in design.results}
    return next((rung for rung in ladder if rung not in verified), None)


@dataclass(frozen=True)
class VerifyTarget:
    design: design_pb2.Design
    rung: str
    repeat: int = 0  # 0: first verification at the rung; k: its k-th repeat
    base_seed: int = BASE_TRAINING_SEED

    @property
    def training_seed(self) -> int:
        return self.base_seed + self.repeat

    @property
    def key(self) -> str:
        """Identifies the verification within the experiment (job dedupe)."""
        suffix = f":repeat{self.repeat}" if self.repeat else ""
        return f"verify:{self.design.id}:{self.rung}{suffix}"


def _repeat_targets(designs: list[design_pb2.Design], allowed: set[str], settings: Knobs,
                    skip: set[str]) -> list[VerifyTarget]:
    """Good designs with fewer than 1 + `repeats` verifications at an allowed rung."""
    out = []
    for d in designs:
        if d.quadrant not in (Q.QUADRANT_GOOD_CONFIDENT, Q.QUADRANT_GOOD_UNCONFIDENT):
            continue
        for r in d.results:
            done = max(1, r.repeats)
            target = VerifyTarget(d, r.rung, done, settings.training_seed)
            if r.rung in allowed and done <= settings.repeats and target.key not in skip:
                out.append(target)
    return out


def choose_verify_target(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig,
                         open_rungs: Iterable[str], busy: set[tuple[str, str]],
                         rng: random.Random, skip: Iterable[str] = ()) -> VerifyTarget | None:
    """What to verify next, or None.

    `open_rungs`: rungs with budget available that the worker can run; `busy`: (design,
    rung) pairs already queued, running, done or failed; `skip`: VerifyTarget keys already
    taken (repeats in flight). Every design is verified at the lowest rung first (oldest
    first); then repeats of good designs (when configured); then a quadrant is drawn as for
    parents to promote a design to its next rung.
    """
    ladder = [r.name for r in config.ladder.rungs]
    allowed = set(open_rungs)
    candidates = []
    for d in designs:
        rung = next_rung(d, ladder)
        if d.state in VERIFIABLE and rung in allowed and (d.id, rung) not in busy:
            candidates.append((d, rung))
    settings = knobs(config)
    lowest = [(d, r) for d, r in candidates if r == ladder[0]]
    if lowest:
        return VerifyTarget(*lowest[0], base_seed=settings.training_seed)
    ranks = tied_ranks(designs, settings.z)
    if settings.repeats:
        again = _repeat_targets(designs, allowed, settings, set(skip))
        if again:
            return min(again, key=lambda t: (t.repeat, ranks[t.design.id], t.design.id))
    if not candidates:
        return None
    by_id = dict((d.id, r) for d, r in candidates)
    for quadrant in _quadrant_order(VERIFY_QUADRANTS, config.selection.p_explore, rng):
        pool = [d for d, _ in candidates if d.quadrant == quadrant]
        if pool:
            design = _ranked_pick(pool, 1, rng, config.selection.noise, ranks)[0]
            return VerifyTarget(design, by_id[design.id], base_seed=settings.training_seed)
    return None


def merge_repeat(previous: design_pb2.RungResult, new: design_pb2.RungResult
                 ) -> design_pb2.RungResult:
    """One rung result from a design's verifications with different training seeds: the
    mean of each metric, with the standard error of that mean (the larger of the spread
    between seeds and the runs' own errors); per-run values kept under "runs" in
    metrics_json."""
    runs = _runs(previous) + _runs(new)
    out = design_pb2.RungResult()
    out.CopyFrom(new)
    out.repeats = len(runs)
    out.metrics.clear()
    out.stderr.clear()
    for name in new.metrics:
        values = [r["metrics"][name] for r in runs if name in r["metrics"]]
        errors = [r["stderr"].get(name, 0.0) for r in runs if name in r["metrics"]]
        n = len(values)
        mean = sum(values) / n
        within = math.sqrt(sum(e * e for e in errors)) / n
        between = (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else 0.0)
        out.metrics[name] = mean
        if within or between:
            out.stderr[name] = max(within, between)
    out.tokens_trained = sum(r["tokens_trained"] for r in runs)
    out.wall_seconds = sum(r["wall_seconds"] for r in runs)
    try:
        report = json.loads(new.metrics_json or "{}")
    except ValueError:
        report = {}
    report = report if isinstance(report, dict) else {"report": report}
    out.metrics_json = json.dumps({**report, "runs": runs}, default=str)
    return out


def _runs(result: design_pb2.RungResult) -> list[dict]:
    """The per-seed runs merged into a rung result (a single run when not merged)."""
    try:
        runs = json.loads(result.metrics_json or "{}").get("runs")
    except (ValueError, AttributeError):
        runs = None
    if isinstance(runs, list) and result.repeats > 1:
        return runs
    return [{"training_seed": result.training_seed, "job_id": result.job_id,
             "metrics": dict(result.metrics), "stderr": dict(result.stderr),
             "tokens_trained": result.tokens_trained, "wall_seconds": result.wall_seconds}]


def draw_operation(mix: experiment_pb2.DesignMix, n_designs: int, rng: random.Random) -> str:
    """mutation | crossover | scratch, by the mix weights of the unlocked operations."""
    weights = {"mutation": mix.mutation}
    if n_designs >= mix.crossover_unlock:
        weights["crossover"] = mix.crossover
    if n_designs >= mix.scratch_unlock:
        weights["scratch"] = mix.scratch
    total = sum(weights.values())
    if total <= 0:
        return "mutation"
    x = rng.random() * total
    for op, w in weights.items():
        x -= w
        if x <= 0:
            return op
    return "mutation"


PARENT_COUNT = {"mutation": 1, "crossover": 2, "scratch": 0}

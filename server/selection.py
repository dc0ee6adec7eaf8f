"""Selection (paper section 4.3): fitness, confidence, quadrants, parents, verify targets.

Pure functions over Design messages and an experiment config; randomness comes only from
the `random.Random` passed in, so a seed makes every choice reproducible.

- Fitness: per rung and benchmark, the advantage over random guessing is min-max
  normalised across the designs verified at that rung; a benchmark counts at a rung only
  where the best design beats random by `min_advantage`. A design's rung score is the
  weighted mean over counted benchmarks; its fitness the mean over its verified rungs.
- Confidence: proposed +1, implemented +1, then rung k of the ladder (0-based) adds k + 1.
- Quadrants: good = fitness above that of the design just outside the top `fitness_cut`
  fraction; confident likewise with `confidence_cut` (designs tied at the cut stay out).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from genesys.v1 import design_pb2, experiment_pb2

Q = design_pb2
PARENT_QUADRANTS = (Q.QUADRANT_GOOD_CONFIDENT, Q.QUADRANT_POOR_CONFIDENT,
                    Q.QUADRANT_GOOD_UNCONFIDENT, Q.QUADRANT_POOR_UNCONFIDENT)
VERIFY_QUADRANTS = (Q.QUADRANT_GOOD_UNCONFIDENT, Q.QUADRANT_POOR_UNCONFIDENT,
                    Q.QUADRANT_GOOD_CONFIDENT, Q.QUADRANT_POOR_CONFIDENT)
VERIFIABLE = (Q.DESIGN_STATE_IMPLEMENTED, Q.DESIGN_STATE_VERIFIED)


def rescore(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig
            ) -> list[design_pb2.Design]:
    """Recompute fitness, confidence and quadrant in place; return the designs that changed."""
    before = {d.id: (d.fitness, d.confidence, d.quadrant) for d in designs}
    fitness = _fitness(designs, config)
    ladder = [r.name for r in config.ladder.rungs]
    for d in designs:
        d.fitness = fitness.get(d.id, 0.0)
        d.confidence = confidence(d, ladder)
    good = _top(designs, lambda d: d.fitness, config.selection.fitness_cut)
    confident = _top(designs, lambda d: d.confidence, config.selection.confidence_cut)
    for d in designs:
        d.quadrant = {(True, True): Q.QUADRANT_GOOD_CONFIDENT,
                      (True, False): Q.QUADRANT_GOOD_UNCONFIDENT,
                      (False, True): Q.QUADRANT_POOR_CONFIDENT,
                      (False, False): Q.QUADRANT_POOR_UNCONFIDENT}[(d.id in good, d.id in confident)]
    return [d for d in designs if before[d.id] != (d.fitness, d.confidence, d.quadrant)]


def confidence(design: design_pb2.Design, ladder: list[str]) -> int:
    value = 1 if design.state == Q.DESIGN_STATE_PROPOSED else 2
    verified = {r.rung for r in design.results}
    return value + sum(i + 1 for i, rung in enumerate(ladder) if rung in verified)


def _fitness(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig
             ) -> dict[str, float]:
    benchmarks = {b.name: b for b in config.benchmarks}
    reported = {k for d in designs for r in d.results for k in r.metrics}
    if not benchmarks.keys() & reported:  # suite not reported at all: use every metric
        benchmarks = {k: experiment_pb2.Benchmark(name=k) for k in sorted(reported)}
    rung_scores: dict[str, list[float]] = {}
    for rung in config.ladder.rungs:
        rows = {d.id: r.metrics for d in designs for r in d.results if r.rung == rung.name}
        if not rows:
            continue
        totals = {i: 0.0 for i in rows}
        weight_sum = 0.0
        for name, bench in benchmarks.items():
            adv = {i: _advantage(m[name], bench) for i, m in rows.items() if name in m}
            if not adv or max(adv.values()) < config.selection.min_advantage:
                continue
            lo, hi = min(adv.values()), max(adv.values())
            weight = bench.weight or 1.0
            weight_sum += weight
            for i, a in adv.items():
                totals[i] += weight * ((a - lo) / (hi - lo) if hi > lo else 1.0)
        if weight_sum:
            for i, total in totals.items():
                rung_scores.setdefault(i, []).append(total / weight_sum)
    return {i: sum(s) / len(s) for i, s in rung_scores.items()}


def _advantage(score: float, bench: experiment_pb2.Benchmark) -> float:
    return bench.random_baseline - score if bench.lower_is_better else score - bench.random_baseline


def _top(designs: list[design_pb2.Design], key, fraction: float) -> set[str]:
    """Ids whose value beats the value just outside the top `fraction` (ties stay out)."""
    values = sorted((key(d) for d in designs), reverse=True)
    if not values:
        return set()
    k = max(1, math.ceil(len(values) * fraction))
    cut = values[k] if k < len(values) else values[-1]
    return {d.id for d in designs if key(d) > cut}


def _ranked_pick(candidates: list[design_pb2.Design], count: int, rng: random.Random,
                 noise: float) -> list[design_pb2.Design]:
    """Sample without replacement, weight by rank (fitness, then confidence) plus noise."""
    ranked = sorted(candidates, key=lambda d: (-d.fitness, -d.confidence))
    n = len(ranked)
    pool = [(d, (n - i) / n + noise * rng.random()) for i, d in enumerate(ranked)]
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
    if not any(d.results for d in usable):
        seeds = [d for d in usable if d.seed] or usable
        return _ranked_pick(seeds, count, rng, config.selection.noise), "seeds (nothing ranked yet)"
    for quadrant in _quadrant_order(PARENT_QUADRANTS, config.selection.p_explore, rng):
        pool = [d for d in usable if d.quadrant == quadrant]
        if len(pool) >= count or quadrant == PARENT_QUADRANTS[-1] and pool:
            picked = _ranked_pick(pool, count, rng, config.selection.noise)
            if len(picked) < count:  # top up from everything else
                rest = [d for d in usable if d not in picked]
                picked += _ranked_pick(rest, count - len(picked), rng, config.selection.noise)
            return picked, Q.Quadrant.Name(quadrant).removeprefix("QUADRANT_").lower()
    return _ranked_pick(usable, count, rng, config.selection.noise), "all designs"


def next_rung(design: design_pb2.Design, ladder: list[str]) -> str | None:
    """The lowest ladder rung the design has no result at."""
    verified = {r.rung for r in design.results}
    return next((rung for rung in ladder if rung not in verified), None)


def choose_verify_target(designs: list[design_pb2.Design], config: experiment_pb2.ExperimentConfig,
                         open_rungs: Iterable[str], busy: set[tuple[str, str]],
                         rng: random.Random) -> tuple[design_pb2.Design, str] | None:
    """(design, rung) to verify next, or None.

    `open_rungs`: rungs with budget available that the worker can run; `busy`: (design,
    rung) pairs already queued, running, done or failed. Every design is verified at the
    lowest rung first (oldest first); then a quadrant is drawn as for parents.
    """
    ladder = [r.name for r in config.ladder.rungs]
    allowed = set(open_rungs)
    candidates = []
    for d in designs:
        rung = next_rung(d, ladder)
        if d.state in VERIFIABLE and rung in allowed and (d.id, rung) not in busy:
            candidates.append((d, rung))
    if not candidates:
        return None
    lowest = [(d, r) for d, r in candidates if r == ladder[0]]
    if lowest:
        return lowest[0]
    by_id = dict((d.id, r) for d, r in candidates)
    for quadrant in _quadrant_order(VERIFY_QUADRANTS, config.selection.p_explore, rng):
        pool = [d for d, _ in candidates if d.quadrant == quadrant]
        if pool:
            design = _ranked_pick(pool, 1, rng, config.selection.noise)[0]
            return design, by_id[design.id]
    return None


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

"""Selection on hand-built trees: fitness, confidence, quadrants, parents, verify targets."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from genesys.server import ledger, selection
from genesys.server.experiment_config import with_defaults
from genesys.server.store import LedgerRow
from genesys.v1 import design_pb2 as D
from genesys.v1 import experiment_pb2 as E

LADDER = ["micro", "tiny", "14M"]


def config(**selection_fields) -> E.ExperimentConfig:
    cfg = E.ExperimentConfig(benchmarks=[E.Benchmark(name="piqa", random_baseline=0.5),
                                         E.Benchmark(name="ppl", random_baseline=100,
                                                     lower_is_better=True)])
    cfg.ladder.rungs.extend(E.Rung(name=n) for n in LADDER)
    cfg.selection.MergeFrom(E.SelectionConfig(**selection_fields))
    return with_defaults(cfg, [], 60, 3, 4)


def make(i: int, results: dict[str, dict[str, float]] | None = None, seed=False,
         state=D.DESIGN_STATE_IMPLEMENTED) -> D.Design:
    d = D.Design(id=f"d{i}", name=f"n{i}", seed=seed, state=state)
    for rung, metrics in (results or {}).items():
        d.results.add(rung=rung, metrics=metrics)
        d.state = D.DESIGN_STATE_VERIFIED
    return d


def tree() -> list[D.Design]:
    """8 designs: d0..d3 verified at micro (d0 best), d0/d1 also at tiny, d4..d7 unverified."""
    piqa, ppl = [0.70, 0.68, 0.60, 0.55], [80, 81, 85, 88]
    designs = [make(i, {"micro": {"piqa": piqa[i], "ppl": ppl[i]}}) for i in range(4)]
    designs[0].results.add(rung="tiny", metrics={"piqa": 0.7, "ppl": 50})
    designs[1].results.add(rung="tiny", metrics={"piqa": 0.6, "ppl": 60})
    designs += [make(i, seed=i == 4) for i in range(4, 8)]
    return designs


def test_fitness_normalises_per_rung_and_averages_rungs():
    designs = tree()
    selection.rescore(designs, config())
    fit = {d.id: d.fitness for d in designs}
    micro_d1 = (0.13 / 0.15 + 7 / 8) / 2
    assert fit["d0"] == pytest.approx(1.0)
    assert fit["d1"] == pytest.approx(micro_d1 / 2)  # best-minus at tiny scores 0
    assert fit["d2"] == pytest.approx((0.05 / 0.15 + 3 / 8) / 2)
    assert fit["d3"] == 0.0 and fit["d7"] == 0.0


def test_metric_counts_only_where_best_beats_random():
    designs = [make(i, {"micro": {"piqa": 0.5 + 0.001 * i, "ppl": 90 - i}}) for i in range(3)]
    selection.rescore(designs, config())
    # piqa never beats random by 0.02: only ppl ranks, d2 has the lowest perplexity.
    assert [d.fitness for d in designs] == [0.0, 0.5, 1.0]


def test_confidence_and_quadrants():
    designs = tree()
    designs.append(make(9, state=D.DESIGN_STATE_PROPOSED))
    selection.rescore(designs, config(fitness_cut=0.1, confidence_cut=0.25))
    by_id = {d.id: d for d in designs}
    assert by_id["d9"].confidence == 1 and by_id["d7"].confidence == 2
    assert by_id["d2"].confidence == 3 and by_id["d0"].confidence == 5
    assert by_id["d0"].quadrant == D.QUADRANT_GOOD_CONFIDENT
    assert by_id["d1"].quadrant == D.QUADRANT_POOR_CONFIDENT
    assert by_id["d2"].quadrant == D.QUADRANT_POOR_UNCONFIDENT, "ties at the cut stay out"
    assert by_id["d7"].quadrant == D.QUADRANT_POOR_UNCONFIDENT


def test_parents_mostly_good_confident_sometimes_poor_confident():
    designs = tree()
    cfg = config(p_explore=0.2, fitness_cut=0.1)
    selection.rescore(designs, cfg)
    rng = random.Random(7)
    draws = Counter(selection.select_parents(designs, 1, cfg, rng)[0][0].id for _ in range(2000))
    assert set(draws) == {"d0", "d1"}
    assert 0.16 < draws["d1"] / 2000 < 0.24, draws


def test_parents_are_deterministic_under_a_seed():
    designs = tree()
    cfg = config()
    selection.rescore(designs, cfg)
    first = [selection.select_parents(designs, 2, cfg, random.Random(3))[0] for _ in range(5)]
    again = [selection.select_parents(designs, 2, cfg, random.Random(3))[0] for _ in range(5)]
    assert [[d.id for d in p] for p in first] == [[d.id for d in p] for p in again]
    assert all(len({d.id for d in p}) == 2 for p in first), "two distinct parents"


def test_seeds_are_parents_before_anything_is_ranked():
    designs = [make(i, seed=i < 2) for i in range(5)]
    cfg = config()
    selection.rescore(designs, cfg)
    for s in range(20):
        parents, reason = selection.select_parents(designs, 1, cfg, random.Random(s))
        assert parents[0].seed and "seeds" in reason


def test_verify_lowest_rung_first_in_submission_order():
    designs = tree()
    cfg = config()
    selection.rescore(designs, cfg)
    target = selection.choose_verify_target(designs, cfg, LADDER, set(), random.Random(0))
    assert (target[0].id, target[1]) == ("d4", "micro")
    busy = {("d4", "micro"), ("d5", "micro")}
    target = selection.choose_verify_target(designs, cfg, LADDER, busy, random.Random(0))
    assert (target[0].id, target[1]) == ("d6", "micro")


def test_verify_promotes_good_unconfident_with_exploration():
    designs = [make(i, {"micro": {"piqa": 0.6 + 0.05 * i}}) for i in range(4)]
    cfg = config(p_explore=0.2, fitness_cut=0.5)
    selection.rescore(designs, cfg)
    assert [d.quadrant for d in designs] == [D.QUADRANT_POOR_UNCONFIDENT] * 2 + [
        D.QUADRANT_GOOD_UNCONFIDENT] * 2
    counts = Counter()
    for s in range(1000):
        d, rung = selection.choose_verify_target(designs, cfg, LADDER, set(), random.Random(s))
        counts[d.id] += 1
        assert rung == "tiny", "the lowest rung it lacks"
    assert counts["d3"] > counts["d2"], "rank weighted"
    assert 0.14 < (counts["d0"] + counts["d1"]) / 1000 < 0.26, counts
    assert selection.choose_verify_target(designs, cfg, ["14M"], set(), random.Random(0)) is None


def test_failed_and_proposed_designs_are_not_verified():
    designs = [make(0, state=D.DESIGN_STATE_FAILED), make(1, state=D.DESIGN_STATE_PROPOSED)]
    assert selection.choose_verify_target(designs, config(), LADDER, set(), random.Random(0)) is None


def test_operation_mix_unlocks():
    mix = config().design_mix
    rng = random.Random(1)
    assert {selection.draw_operation(mix, 5, rng) for _ in range(200)} == {"mutation"}
    ops = Counter(selection.draw_operation(mix, 25, rng) for _ in range(4000))
    assert set(ops) == {"mutation", "crossover", "scratch"}
    assert 0.75 < ops["mutation"] / 4000 < 0.85


def test_budget_is_released_up_the_ladder_by_the_ratio():
    rows = [LedgerRow("micro", 64, 3, 9), LedgerRow("tiny", 16, 0, 1), LedgerRow("14M", 4, 0, 0)]
    assert ledger.released(rows, LADDER, 4.0) == {"micro": 64, "tiny": 2, "14M": 0}


def test_uniform_parent_policy_ignores_fitness():
    designs = tree()
    cfg = config(parent_policy="uniform")
    selection.rescore(designs, cfg)
    counts = Counter()
    for seed in range(2000):
        parents, reason = selection.select_parents(designs, 1, cfg, random.Random(seed))
        assert reason == "uniform"
        counts[parents[0].id] += 1
    assert set(counts) == {d.id for d in designs}
    assert max(counts.values()) < 1.4 * min(counts.values())  # ~250 each
    quadrant = Counter(selection.select_parents(designs, 1, config(), random.Random(s))[0][0].id
                       for s in range(2000))
    assert quadrant["d0"] > 2 * counts["d0"]  # the paper's policy favours the best design


def test_unknown_parent_policy_is_rejected():
    from genesys.server.errors import InvalidArgument
    from genesys.server.experiment_config import validate

    with pytest.raises(InvalidArgument, match="parent_policy"):
        validate("e", config(parent_policy="best"))

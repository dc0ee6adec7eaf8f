"""Selection on hand-built trees: fitness, confidence, quadrants, parents, verify targets."""

from __future__ import annotations

import json
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
    assert (target.design.id, target.rung) == ("d4", "micro")
    busy = {("d4", "micro"), ("d5", "micro")}
    target = selection.choose_verify_target(designs, cfg, LADDER, busy, random.Random(0))
    assert (target.design.id, target.rung) == ("d6", "micro")


def test_verify_promotes_good_unconfident_with_exploration():
    designs = [make(i, {"micro": {"piqa": 0.6 + 0.05 * i}}) for i in range(4)]
    cfg = config(p_explore=0.2, fitness_cut=0.5)
    selection.rescore(designs, cfg)
    assert [d.quadrant for d in designs] == [D.QUADRANT_POOR_UNCONFIDENT] * 2 + [
        D.QUADRANT_GOOD_UNCONFIDENT] * 2
    counts = Counter()
    for s in range(1000):
        target = selection.choose_verify_target(designs, cfg, LADDER, set(), random.Random(s))
        counts[target.design.id] += 1
        assert target.rung == "tiny", "the lowest rung it lacks"
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


def with_errors(i: int, metrics: dict[str, float], stderr: dict[str, float], rung="micro",
                **fields) -> D.Design:
    d = make(i)
    d.results.add(rung=rung, metrics=metrics, stderr=stderr, **fields)
    d.state = D.DESIGN_STATE_VERIFIED
    return d


def test_a_benchmark_whose_spread_is_below_its_noise_does_not_count():
    # piqa differs by 0.01 with standard errors of 0.02: noise; ppl separates clearly.
    designs = [with_errors(i, {"piqa": 0.60 + 0.01 * i, "ppl": 80.0 - 5 * i},
                           {"piqa": 0.02, "ppl": 0.5}) for i in range(3)]
    selection.rescore(designs, config())
    assert [d.fitness for d in designs] == pytest.approx([0.0, 0.5, 1.0])
    assert all(d.fitness_stderr == pytest.approx(0.5 / 10) for d in designs)
    # the same piqa spread with small errors counts; now ppl is the one without signal.
    precise = [with_errors(i, {"piqa": 0.60 + 0.01 * i, "ppl": 80.0 + 0.2 * i},
                           {"piqa": 0.001, "ppl": 0.5}) for i in range(3)]
    selection.rescore(precise, config())
    assert [d.fitness for d in precise] == pytest.approx([0.0, 0.5, 1.0])


def test_a_benchmark_at_chance_does_not_count_even_with_spread():
    cfg = config()
    cfg.benchmarks.add(name="cloze", random_baseline=0.0)
    designs = [with_errors(i, {"cloze": 0.001 * i, "ppl": 80.0 - i}, {"cloze": 0.01, "ppl": 0.1})
               for i in range(3)]
    assert not selection.benchmark_counts(
        {d.id: selection.Score(d.results[0].metrics["cloze"], 0.01) for d in designs}, 2.0, 0.02)
    selection.rescore(designs, cfg)
    assert [d.fitness for d in designs] == pytest.approx([0.0, 0.5, 1.0])


def test_designs_within_their_combined_error_tie():
    # d0..d2 differ by less than 2 combined standard errors; d3 is clearly behind.
    designs = [make(i) for i in range(4)]
    for d, (fitness, se) in zip(designs, [(0.90, 0.05), (0.85, 0.05), (0.80, 0.04), (0.2, 0.05)],
                                strict=True):
        d.fitness, d.fitness_stderr = fitness, se
    assert selection.tied_ranks(designs) == {"d0": 0, "d1": 0, "d2": 0, "d3": 3}
    exact = [make(i) for i in range(2)]
    exact[0].fitness, exact[1].fitness = 0.9, 0.85
    assert selection.tied_ranks(exact) == {"d0": 0, "d1": 1}, "no errors: no ties"
    # tied designs are drawn as often as each other
    counts = Counter(selection._ranked_pick(designs[:3], 1, random.Random(s), 0.0,
                                            selection.tied_ranks(designs))[0].id
                     for s in range(3000))
    assert max(counts.values()) < 1.2 * min(counts.values()), counts


def test_ties_keep_noisy_designs_out_of_the_good_quadrant():
    designs = [with_errors(i, {"ppl": 80.0 - 0.1 * i}, {"ppl": 1.0}) for i in range(3)]
    designs += [with_errors(3, {"ppl": 60.0}, {"ppl": 1.0})]
    cfg = config(fitness_cut=0.5)
    selection.rescore(designs, cfg)
    good = {d.id for d in designs if d.quadrant in (D.QUADRANT_GOOD_CONFIDENT,
                                                     D.QUADRANT_GOOD_UNCONFIDENT)}
    assert good == {"d3"}, "d0..d2 are within noise of each other; none of them is good"


def test_repeats_verify_good_designs_again_and_merge_their_seeds():
    cfg = config(fitness_cut=0.5)
    cfg.extra_json = '{"selection": {"repeats": 2}}'
    designs = [with_errors(i, {"ppl": 80.0 - 10 * i}, {"ppl": 1.0}, training_seed=42, repeats=1)
               for i in range(4)]
    selection.rescore(designs, cfg)
    target = selection.choose_verify_target(designs, cfg, ["micro"], {(d.id, "micro") for d in designs},
                                            random.Random(0))
    assert (target.design.id, target.rung, target.repeat, target.training_seed) == ("d3", "micro", 1, 43)
    skip = [target.key]
    other = selection.choose_verify_target(designs, cfg, ["micro"], set(), random.Random(0), skip)
    assert other.design.id == "d2" and other.key != target.key
    again = D.RungResult(rung="micro", metrics={"ppl": 52.0}, stderr={"ppl": 1.0}, training_seed=43,
                         repeats=1)
    merged = selection.merge_repeat(designs[3].results[0], again)
    assert merged.repeats == 2 and merged.metrics["ppl"] == pytest.approx(51.0)
    assert merged.stderr["ppl"] == pytest.approx(1.0), "spread of the seeds: sd 1.41 / sqrt 2"
    third = selection.merge_repeat(merged, D.RungResult(rung="micro", metrics={"ppl": 51.0},
                                                        stderr={"ppl": 1.0}, training_seed=44))
    assert third.repeats == 3 and third.stderr["ppl"] < merged.stderr["ppl"]
    assert [r["training_seed"] for r in json.loads(third.metrics_json)["runs"]] == [42, 43, 44]
    d3 = designs[3]
    confidence_before = d3.confidence
    d3.results[0].CopyFrom(third)
    assert selection.confidence(d3, LADDER) == confidence_before + 2, "repeats add confidence"
    assert selection.choose_verify_target([d3], cfg, ["micro"], {("d3", "micro")},
                                          random.Random(0)) is None, "repeats used up"


def test_pareto_parents_come_from_the_front():
    designs = []
    # (fitness, tokens/s, peak memory): d0 best quality, d1 fastest, d2 dominated by both.
    for i, (fit, speed, memory) in enumerate([(0.9, 100, 50), (0.5, 400, 40), (0.4, 90, 60)]):
        d = with_errors(i, {"ppl": 80}, {}, tokens_per_second=speed, peak_memory_bytes=memory)
        d.fitness = fit
        designs.append(d)
    points = {d.id: selection.objectives(d, "micro") for d in designs}
    assert selection.pareto_ranks(points) == {"d0": 0, "d1": 0, "d2": 2}
    cfg = config(parent_policy="pareto")
    counts = Counter(selection.select_parents(designs, 1, cfg, random.Random(s))[0][0].id
                     for s in range(1000))
    assert counts["d2"] < counts["d0"] / 2 and counts["d2"] < counts["d1"] / 2, counts
    assert selection.select_parents(designs, 1, cfg, random.Random(0))[1] == "pareto rank"


def test_selection_knobs_are_validated():
    from genesys.server.errors import InvalidArgument
    from genesys.server.experiment_config import validate

    cfg = config()
    cfg.extra_json = '{"selection": {"repeats": "two"}}'
    with pytest.raises(InvalidArgument, match="repeats must be a number"):
        validate("e", cfg)
    cfg.extra_json = '{"selection": {"z": 1.5, "repeats": 1, "training_seed": 7}}'
    validate("e", cfg)
    assert selection.knobs(cfg) == selection.Knobs(z=1.5, repeats=1, training_seed=7)
    designs = [make(0)]
    assert selection.choose_verify_target(designs, cfg, LADDER, set(),
                                          random.Random(0)).training_seed == 7

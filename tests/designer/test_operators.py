"""Genetic operators: children are new, well-formed, deterministic; config moves stay sane."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from genesys.design import load_design
from genesys.designer import NoCandidate, propose
from genesys.designer.perturb import perturb, tunables


@pytest.mark.parametrize("operation", ["mutation", "crossover", "scratch"])
def test_children_are_new_well_formed_designs(seeds, operation):
    library = list(seeds.values())
    rng = random.Random(7)
    digests = {d.digest for d in library}
    for _ in range(8):
        parents = rng.sample(library, 2)
        cand = propose(parents, operation, rng, library)
        child = cand.design
        again = load_design(child.to_source())
        assert again.digest == child.digest
        assert set(child.subtree()) == set(child.units)
        assert child.digest not in digests
        assert cand.notes and cand.operation == operation
        expected = {"mutation": 1, "crossover": 2, "scratch": 0}[operation]
        assert cand.parents == [p.name for p in parents][:expected]


def test_propose_is_deterministic_under_a_seed(seeds):
    library = list(seeds.values())

    def run(seed):
        rng = random.Random(seed)
        return [propose([seeds["gpt"], seeds["rwkv6"]], op, rng, library).design.digest
                for op in ("mutation", "crossover", "scratch", "mutation")]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_crossover_takes_units_from_both_parents(seeds):
    cand = propose([seeds["gpt"], seeds["retnet"]], "crossover", random.Random(0), [])
    codes = {u.canonical_code for u in cand.design.units.values()}
    gpt = {u.canonical_code for u in seeds["gpt"].units.values()}
    assert codes & gpt and codes - gpt
    assert any("retnet." in n for n in cand.notes)


def test_crossover_of_a_design_with_itself_has_no_candidate(seeds):
    with pytest.raises(NoCandidate):
        propose([seeds["gpt"], seeds["gpt"]], "crossover", random.Random(0), [])


def test_perturb_moves_one_value_within_bounds(seeds):
    rng = random.Random(1)
    for name, design in seeds.items():
        values = tunables(design)
        for key in values:
            child, note = perturb(design, rng, key)
            new = child.config[key]
            assert new != values[key] and key in note, (name, key)
            assert {k: v for k, v in child.config.items() if k != key} == {
                k: v for k, v in design.config.items() if k != key}
            if "eps" in key:
                assert 1e-8 <= new <= 1e-2
            if key == "n_heads":
                assert new in (1, 2, 4, 8)
            if "head_dim" in key or key == "headdim":
                assert new in (16, 32, 64, 128)
    # unit defaults (not in CONFIG) are tunable too, and constant expressions are evaluated
    assert tunables(seeds["gpt"])["mlp_ratio"] == pytest.approx(8 / 3)


def test_designer_imports_no_torch():
    code = ("import sys, random, genesys.designer as g; from genesys.designer.job import seed_sources;"
            "from genesys.design import load_design;"
            "lib=[load_design(s) for s in seed_sources().values()];"
            "g.propose(lib[:2], 'crossover', random.Random(0), lib);"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_crossover_of_same_family_designs_recombines_config(seeds):
    tweaked, _ = perturb(seeds["gpt"], random.Random(0), "mlp_ratio")
    cand = propose([seeds["gpt"], tweaked], "crossover", random.Random(0), [])
    assert cand.design.config["mlp_ratio"] == tweaked.config["mlp_ratio"]
    assert cand.notes == [f"config mlp_ratio={tweaked.config['mlp_ratio']!r} from {tweaked.name}"]


def test_children_have_labels_saying_what_changed(seeds):
    from genesys.designer.operators import make_label, swap_unit

    library = list(seeds.values())
    child, _, changes = swap_unit(seeds["gpt"], [seeds["retnet"]], random.Random(0))
    assert changes[0].startswith("+") and changes[0][1:] in seeds["retnet"].units
    labels = set()
    for seed in range(30):
        cand = propose([seeds["gpt"]], "mutation", random.Random(seed), library,
                       labels={"gpt": "gpt+Retention"})
        assert cand.label.startswith("gpt+Retention") and cand.label != "gpt+Retention"
        labels.add(cand.label)
        moved = [k for k, v in cand.design.config.items() if seeds["gpt"].config.get(k) != v]
        if ":" in cand.label:
            assert all(f":{k}=" in cand.label for k in moved)
    assert any("+" in label[len("gpt+Retention"):] for label in labels), "unit swaps"
    assert any(":" in label for label in labels), "hyperparameter moves"
    crossed = propose([seeds["gpt"], seeds["retnet"]], "crossover", random.Random(0), [])
    assert crossed.label.startswith("gpt+") or crossed.label.startswith("gpt:")
    long = make_label("gpt" + "+Unit" * 30, [":n_heads=2"])
    assert len(long) <= 80 and long.startswith("gpt~") and long.endswith(":n_heads=2")


def test_config_keys_no_unit_reads_are_never_moved(seeds):
    # retnet with a key left behind by a swap: no unit reads n_heads, so it is not tunable.
    stale = seeds["retnet"].to_source().replace("CONFIG = {", "CONFIG = {'n_heads': 4, ", 1)
    design = load_design(stale, name="retnet")
    assert design.config["n_heads"] == 4 and "n_heads" not in tunables(design)
    for seed in range(40):
        child, _ = perturb(design, random.Random(seed))
        assert child.config["n_heads"] == 4

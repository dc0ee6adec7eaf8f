"""Tree surgery: transplanting subtrees keeps the tree well-formed, renames on clashes."""

from __future__ import annotations

import ast

from genesys.design import load_design
from genesys.designer.slots import compatible, role_of, slots
from genesys.designer.surgery import reachable, rename_references, transplant


def assert_well_formed(design) -> None:
    again = load_design(design.to_source())
    assert again.digest == design.digest
    names = [u.name for u in design.units.values()]
    assert len(names) == len(set(names))
    assert set(design.subtree()) == set(design.units), "no orphan units"
    for u in design.units.values():
        assert ast.parse(u.code).body[0].name == u.name
        assert all(c.name in design.units for c in u.children)


def test_transplant_shares_identical_units_and_drops_the_old_subtree(block_a, block_b):
    child, notes = transplant(block_a, "Mixer", block_b, "Attn")
    assert_well_formed(child)
    assert sorted(child.units) == ["Block", "Helper", "Inner", "Mixer", "Norm"]
    assert child.children_of("Mixer") == ["Norm", "Helper", "Inner"]
    assert "X + 2" in child.units["Helper"].code  # the donor's Helper replaced A's dropped one
    assert "class Mixer(GAUBase)" in child.units["Mixer"].code and "width=3" in child.units["Mixer"].code
    assert child.config == {"heads": 4, "width": 3}
    assert any("heads stays 4" in n for n in notes)
    assert child.digest not in (block_a.digest, block_b.digest)


def test_transplant_renames_clashing_units_and_their_references(block_a, block_b):
    child, notes = transplant(block_a, "Norm", block_b, "Attn")
    assert_well_formed(child)
    assert child.children_of("Norm") == ["Norm2", "Helper2", "Inner"]
    assert "Helper2.twice" in child.units["Inner"].code
    assert "X + 1" in child.units["Helper"].code and "X + 2" in child.units["Helper2"].code
    assert child.children_of("Mixer") == ["Norm", "Helper"]  # parents of the slot unchanged
    assert {"renamed incoming Norm to Norm2", "renamed incoming Helper to Helper2"} <= set(notes)


def test_transplant_between_seeds_merges_config_and_imports(seeds):
    child, _ = transplant(seeds["mamba2"], "Mamba2Layer", seeds["gpt"], "MHA")
    assert_well_formed(child)
    assert child.children_of("Mamba2Layer") == ["RotaryEmbedding"]
    assert "SSDMinimalDiscrete" not in child.units
    assert child.config["n_heads"] == seeds["gpt"].config["n_heads"]
    assert set(seeds["gpt"].imports) <= set(child.imports)


def test_rename_references_leaves_unrelated_units_untouched(block_a):
    helper = block_a.units["Helper"]
    assert rename_references(helper, {"Mixer": "Other"}) is helper
    assert reachable(block_a, skip="Mixer") == ["Block", "Norm"]


def test_roles_and_compatibility_of_seed_units(seeds):
    by_unit = {(name, s.unit): s for name, d in seeds.items() for s in slots(d)}
    mha, msr = by_unit["gpt", "MHA"], by_unit["retnet", "MultiScaleRetention"]
    assert (mha.role, msr.role) == ("mixer", "mixer") and compatible(mha, msr)
    assert by_unit["gpt", "GatedMLP"].role == "mlp" and by_unit["rwkv6", "RWKV6ChannelMix"].role == "mlp"
    assert by_unit["ttt", "RMSNorm"].role == "norm"
    assert not compatible(mha, by_unit["gpt", "GatedMLP"])
    # GPT's rotary takes input_emb (call site and declaration); TTT's maps X -> Y only.
    assert "input_emb" in by_unit["gpt", "RotaryEmbedding"].inputs
    assert not compatible(by_unit["gpt", "RotaryEmbedding"], by_unit["ttt", "RotaryEmbedding"])
    assert role_of("LoRA", "Low-rank projection") == "other"

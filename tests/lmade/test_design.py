import dataclasses
import textwrap

import pytest
import torch
from genesys.lmade import DesignFormatError, GAUBase, GAUShapeError, load_design, seeds

GOOD = textwrap.dedent('''
    import torch
    from genesys.lmade import GAUBase, UnitDecl

    class Block(GAUBase):
        """Doubles then halves."""
        CHILDREN = [UnitDecl("Scale", desc="multiplies")]

        def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
            super().__init__(embed_dim, block_loc, kwarg_all)
            self.scale = Scale(embed_dim, block_loc, kwarg_all, device=device, dtype=dtype, **kwarg_all)

        def _forward(self, X, **Z):
            return self.scale(X, **Z)

    class Scale(GAUBase):
        def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, factor=2.0, **kwargs):
            super().__init__(embed_dim, block_loc, kwarg_all)
            self.factor = factor

        def _forward(self, X, bias=0.0):
            return X * self.factor + bias, {"seen": True}

    ROOT = "Block"
    CONFIG = {"factor": 3.0}
''')


def test_source_round_trip_keeps_every_field():
    design = load_design(GOOD, name="toy")
    again = load_design(design.to_source(), name="toy")
    assert again == design
    assert again.digest == design.digest
    assert design.children_of("Block") == ["Scale"]
    assert design.units["Block"].desc == "Doubles then halves."


def test_seed_round_trip():
    gpt = seeds.get("gpt")
    assert load_design(gpt.to_source(), name="gpt") == gpt
    assert gpt.subtree() == ["GPT2", "MHA", "GatedMLP", "RMSNorm", "RotaryEmbedding"]


def test_digest_ignores_comments_and_formatting_but_not_content():
    base = load_design(GOOD)
    reformatted = load_design(GOOD.replace("X * self.factor + bias, {", "(X*self.factor) + bias , {  # same\n"))
    assert reformatted.digest == base.digest
    assert load_design(GOOD.replace('"factor": 3.0', '"factor": 4.0')).digest != base.digest
    assert load_design(GOOD.replace("factor + bias", "factor - bias")).digest != base.digest


def test_loaded_units_route_z_and_check_shapes():
    block_cls = load_design(GOOD).root_class()
    block = block_cls(8, (0, 1), {"factor": 3.0}, factor=3.0)
    X = torch.ones(2, 5, 8)
    Y, Z = block(X, bias=1.0, unrelated="kept")
    assert torch.allclose(Y, torch.full_like(X, 4.0))
    assert Z == {"bias": 1.0, "unrelated": "kept", "seen": True}
    with pytest.raises(GAUShapeError, match=r"\(batch, seq_len, 8\)"):
        block(torch.ones(2, 5, 7))


def test_unit_that_changes_shape_is_named():
    class Bad(GAUBase):
        def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
            super().__init__(embed_dim, block_loc, kwarg_all)

        def _forward(self, X):
            return X[:, :-1], {}

    with pytest.raises(GAUShapeError, match="Bad must return Y shaped like X"):
        Bad(4, (0, 1), {})(torch.zeros(1, 3, 4))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("def _forward(self, X, **Z):", "def _forward(self, X, **Z)"), "syntax error"),
        (lambda s: s.replace('ROOT = "Block"', ""), "no ROOT"),
        (lambda s: s.replace('CONFIG = {"factor": 3.0}', ""), "no CONFIG"),
        (lambda s: s.replace('ROOT = "Block"', 'ROOT = "torch"'), "not a GAU class"),
        (lambda s: s.replace("class Scale(GAUBase):", "class Scale(torch.nn.Module):"), "must subclass GAUBase"),
        (
            lambda s: s.replace(
                "def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, factor=2.0, **kwargs)",
                "def __init__(self, embed_dim, factor=2.0)",
            ),
            "__init__ must be",
        ),
        (lambda s: s.replace("def _forward(self, X, bias=0.0)", "def forward(self, X, bias=0.0)"), "_forward"),
        (lambda s: s.replace('UnitDecl("Scale"', 'UnitDecl("Missing"'), "child 'Missing'"),
        (lambda s: s + "\ndef helper():\n    pass\n", "top-level FunctionDef is not allowed"),
        (lambda s: s.replace('CONFIG = {"factor": 3.0}', "CONFIG = dict(factor=3.0)"), "CONFIG must be a literal"),
    ],
)
def test_malformed_designs_name_the_problem(edit, message):
    with pytest.raises(DesignFormatError, match=message):
        load_design(edit(GOOD))


def test_error_carries_line_number():
    with pytest.raises(DesignFormatError) as err:
        load_design(GOOD + "\nprint('hi')\n")
    assert err.value.line == len(GOOD.splitlines()) + 2


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DesignFormatError, match="cannot read design file"):
        load_design(str(tmp_path / "nope.py"))


def test_proto_round_trip_survives_the_wire():
    from genesys.design import Design
    from genesys.v1 import design_pb2

    for design in (load_design(GOOD, name="toy"), seeds.get("gpt")):
        wire = design.to_proto().SerializeToString()
        back = Design.from_proto(design_pb2.GauTree.FromString(wire))
        assert back == design
        assert back.digest == design.digest


def test_design_format_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, genesys.design; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_source_keeps_the_authors_lines_until_the_design_changes():
    commented = "# a comment on line 1\n" + GOOD
    design = load_design(commented)
    assert design.to_source() == commented
    changed = dataclasses.replace(design, config={"factor": 5.0})
    assert "# a comment" not in changed.to_source()
    assert load_design(changed.to_source()).config == {"factor": 5.0}
    renamed = dataclasses.replace(design, name="other")
    assert renamed.to_source() == commented


def test_submodules_are_attributes_of_the_package():
    from genesys import lmade

    assert lmade.seeds.get("gpt").name == "gpt"
    assert "seeds" in dir(lmade) and "checker" in dir(lmade)
    with pytest.raises(AttributeError):
        getattr(lmade, "no_such_module")  # noqa: B009 - the attribute lookup is the test

"""The LLM designers' parts that need no model: answer parsing, settings, the journal,
the model chooser and the experiment-config keys that select a designer."""

from __future__ import annotations

import json

import pytest
from genesys.designer.llm.compose import UnitError, compose, empty_tree, is_placeholder, remap_lines
from genesys.designer.llm.journal import Journal
from genesys.designer.llm.models import ModelChooser
from genesys.designer.llm.parse import ParseError, parse_code_answer, parse_json
from genesys.designer.llm.settings import DesignerSettings
from genesys.server.errors import InvalidArgument
from genesys.server.experiment_config import validate, with_defaults
from genesys.v1 import experiment_pb2

RATING = {"type": "object", "required": ["rating"],
          "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 5}}}
CODE = {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}


@pytest.mark.parametrize("text", [
    '{"rating": 4}',
    'Sure! ```json\n{"rating": 4}\n``` hope that helps',
    'My verdict: {"rating": 9} no wait, {"rating": 4}.',
])
def test_json_is_found_bare_fenced_or_embedded(text):
    assert parse_json(text, RATING) == {"rating": 4}


def test_json_that_breaks_the_schema_says_where():
    with pytest.raises(ParseError, match="rating"):
        parse_json('{"rating": 7}', RATING)
    with pytest.raises(ParseError, match="no JSON"):
        parse_json("I rate it four.", RATING)


def test_a_fenced_code_block_stands_in_for_the_code_field():
    text = "Here is the unit:\n```python\nclass A(GAUBase):\n    pass\n```\nDone."
    answer = parse_code_answer(text, CODE)
    assert answer["code"].startswith("class A(GAUBase)") and "Here is the unit" in answer["analysis"]
    with pytest.raises(ParseError):
        parse_code_answer("no code here", CODE)


def test_settings_take_known_keys_and_name_bad_ones():
    s = DesignerSettings.from_dict({"unit_attempts": 2, "max_tokens": {"coder": 99}, "other": 1})
    assert s.unit_attempts == 2 and s.max_tokens["coder"] == 99 and s.max_tokens["reviewer"] == 512
    with pytest.raises(ValueError, match="llm.review_threshold"):
        DesignerSettings.from_dict({"review_threshold": "high"})
    with pytest.raises(ValueError, match="llm.checker_feedback"):
        DesignerSettings.from_dict({"checker_feedback": 1})


def test_journal_replays_in_order_and_drops_what_follows_a_mismatch(tmp_path):
    path = tmp_path / "j.jsonl"
    first = Journal(path)
    for i in range(3):
        first.record("llm", f"k{i}", {"n": i})
    with open(path, "a") as f:
        f.write('{"kind": "llm", "ke')  # torn by a kill
    again = Journal(path)
    assert again.resumed and len(again.entries) == 3
    assert again.replay("llm", "k0") == {"n": 0}
    assert again.replay("llm", "changed") is None  # the prompt changed: stop replaying
    assert again.replay("llm", "k2") is None and len(again.entries) == 1
    again.record("llm", "new", {"n": 9})
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["k0", "new"]


def test_the_chooser_prefers_the_model_that_succeeds_per_token(tmp_path):
    roles = [{"role": "coder", "model": "big"}, {"role": "coder", "model": "small"}]
    chooser = ModelChooser.from_config(roles, tmp_path / "stats.json")
    assert chooser.choose("proposer").model == ""  # unbound: the gateway decides
    for _ in range(20):
        binding = chooser.choose("coder")
        chooser.spent("coder", binding.model, 4000 if binding.model == "big" else 500)
        chooser.reward("coder", binding.model, True)
    records = chooser.records
    assert records["coder/small"].calls > records["coder/big"].calls
    saved = ModelChooser.from_config(roles, tmp_path / "stats.json")
    assert saved.records["coder/small"].calls == records["coder/small"].calls


def test_experiment_config_names_a_bad_designer_or_role():
    config = with_defaults(experiment_pb2.ExperimentConfig(
        extra_json=json.dumps({"designer": "llm-edit"})), ["gpt"], 60, 3, 4)
    config.llm_roles.add(role="coder", model="smollm2")
    validate("ok", config)
    config.extra_json = json.dumps({"designer": "gpt-5"})
    with pytest.raises(InvalidArgument, match="designer"):
        validate("bad", config)
    config.extra_json = "{}"
    config.llm_roles.add(role="critic", model="smollm2")
    with pytest.raises(InvalidArgument, match=r"llm_roles\[1\].role"):
        validate("bad", config)


BLOCK = '''class Block(GAUBase):
    """Residual around a mixer written later."""

    CHILDREN = [UnitDecl("Mix")]

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.mix = Mix(embed_dim, block_loc, kwarg_all, **kwarg_all)

    def _forward(self, X, **Z):
        Y, Z = self.mix(X, **Z)
        return X + Y, Z
'''


def test_a_unit_goes_into_the_tree_with_placeholders_for_its_new_children():
    scratch = empty_tree("Block", "new")
    assert is_placeholder(scratch, "Block")
    composed = compose(scratch, "Block", BLOCK, "new")
    assert composed.missing == ["Mix"] and is_placeholder(composed.design, "Mix")
    assert not is_placeholder(composed.design, "Block")
    lines = composed.design.to_source().splitlines()
    assert lines[composed.first_line - 1].startswith("class Block(")
    message = f"line {composed.first_line + 9}: NameError"
    assert remap_lines(message, composed.first_line, composed.lines, "Block") == \
        "line 10 of your Block code: NameError"
    # rewriting Block without its child drops the now unreachable placeholder
    alone = BLOCK.replace('CHILDREN = [UnitDecl("Mix")]', "").replace(
        "self.mix = Mix(embed_dim, block_loc, kwarg_all, **kwarg_all)", "pass").replace(
        "Y, Z = self.mix(X, **Z)\n        return X + Y, Z", "return X, {}")
    assert list(compose(composed.design, "Block", alone, "new").design.units) == ["Block"]


@pytest.mark.parametrize(("code", "error"), [
    ("class Other(GAUBase):\n    pass\n", "exactly one class named Block"),
    ("x = 1\n", "line 1 of your code: only imports and the class Block"),
    ("class Block(GAUBase:\n", "syntax error at line 1"),
])
def test_answers_that_cannot_be_the_unit_say_why(code, error):
    with pytest.raises(UnitError, match=error):
        compose(empty_tree("Block", "new"), "Block", code, "new")


def test_bad_designer_settings_abandon_the_job_with_the_key_named():
    from genesys.designer.llm import design_job

    result = design_job({"designer": "llm", "parents": [], "operation": "scratch",
                         "llm": {"unit_attempts": "many"}, "gateway": "127.0.0.1:1"})
    assert not result["ok"] and result["failure_kind"] == "config"
    assert "llm.unit_attempts" in result["error"] and result["trace"]["abandoned_reason"]

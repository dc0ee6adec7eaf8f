"""The static format rules (no child process) and the `genesys check` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from genesys.cli import cli
from genesys.lmade import seeds
from genesys.lmade.checker_static import check_source

BROKEN = Path(__file__).resolve().parent / "broken"
GOOD = (BROKEN / "unused_param.py").read_text()


def with_forward_line(line: str) -> str:
    """The valid corpus design with one extra statement at the top of _forward."""
    anchor = "    def _forward(self, X, **Z):\n"
    return GOOD.replace(anchor, anchor + f"        {line}\n")


@pytest.mark.parametrize("seed", seeds.names())
def test_seeds_pass_the_static_rules(seed):
    result = check_source(seeds.source(seed), seed)
    assert result.passed, result.errors


@pytest.mark.parametrize(("line", "needle"), [
    ("torch.load('x.pt')", "'torch.load' is not allowed"),
    ("torch.os.getcwd()", "'torch.os' is not allowed"),
    ("torch._C._get_tracing_state()", "'torch._C' is not allowed"),
    ("X.__class__.__subclasses__()", "'__subclasses__' is not allowed"),
    ("eval('1')", "'eval' is not allowed"),
    ("open('/etc/passwd')", "'open' is not allowed"),
    ("getattr(torch, '_C')", "getattr(..., '_C') is not allowed"),
])
def test_static_rules_name_the_offending_code(line, needle):
    result = check_source(with_forward_line(line))
    assert not result.passed
    assert any(needle in e for e in result.errors), result.errors
    assert any(e.startswith("line 19:") for e in result.errors), result.errors


def test_declared_child_must_be_instantiated():
    source = GOOD.replace('    """Running-mean token mixing plus an MLP, each with a residual."""',
                          '    """Mixing."""\n\n    CHILDREN = [UnitDecl("Block")]')
    source = source.replace("from genesys.lmade import GAUBase",
                            "from genesys.lmade import GAUBase, UnitDecl")
    result = check_source(source)
    assert any("never instantiates it" in e for e in result.errors), result.errors


def test_cli_usage_errors_exit_2():
    runner = CliRunner()
    assert runner.invoke(cli, ["check", "no-such-design"]).exit_code == 2
    assert runner.invoke(cli, ["check", "gpt", "--scale", "huge"]).exit_code == 2


def test_cli_invalid_design_exits_1_with_json():
    result = CliRunner().invoke(cli, ["check", str(BROKEN / "forbidden_import.py"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False and report["checks"][0]["name"] == "format"
    assert {"valid", "digest", "checks", "params", "seconds"} <= set(report)


@pytest.mark.slow
def test_cli_valid_design_with_an_unused_parameter_exits_0():
    """Unused parameters are a warning that names them; the design stays valid."""
    result = CliRunner().invoke(cli, ["check", str(BROKEN / "unused_param.py")])
    assert result.exit_code == 0, result.output
    assert "VALID design=unused_param" in result.output
    assert "unused parameter(s)" in result.output
    assert "blocks.0.spare.weight (unit Block)" in result.output


@pytest.mark.parametrize("line", ["import genesys.lmade.sandbox", "import subprocess",
                                  "from genesys.lmade.trainer import train"])
def test_only_listed_modules_may_be_imported(line):
    source = GOOD.replace("import torch\n", f"import torch\n{line}\n", 1)
    result = check_source(source)
    assert any("is not allowed; designs may import only" in e for e in result.errors)

import subprocess
import sys

import genesys
from click.testing import CliRunner
from genesys.cli import COMMANDS, cli


def _paths(registry, prefix=()):
    for name, entry in registry.items():
        if name == "":
            continue
        yield prefix + (name,)
        if isinstance(entry, dict):
            yield from _paths(entry, prefix + (name,))


def test_version_prints_package_version():
    result = CliRunner().invoke(cli, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == genesys.__version__


def test_every_registered_command_has_help():
    runner = CliRunner()
    for path in _paths(COMMANDS):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output, result.exception)
        assert "Usage:" in result.output


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_top_level_help_imports_no_torch():
    code = "import sys; from genesys.cli import cli; cli.main(['--help'], standalone_mode=False); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")

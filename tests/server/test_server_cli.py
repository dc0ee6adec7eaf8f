"""`genesys server start` validates its config before serving, naming the bad key."""

from __future__ import annotations

from click.testing import CliRunner
from genesys.cli import cli


def test_bad_config_file_names_the_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[scheduler]\nlease_secs = 5\n")
    result = CliRunner().invoke(cli, ["server", "start", "--config", str(path), "--data-dir",
                                      str(tmp_path)])
    assert result.exit_code == 2 and "scheduler.lease_secs" in result.output


def test_bad_environment_value_names_the_key(tmp_path):
    result = CliRunner().invoke(cli, ["server", "start", "--data-dir", str(tmp_path)],
                                env={"GENESYS_SCHEDULER_LEASE_SECONDS": "soon"})
    assert result.exit_code == 2 and "scheduler.lease_seconds" in result.output
    result = CliRunner().invoke(cli, ["server", "start", "--data-dir", str(tmp_path)],
                                env={"GENESYS_STORE_SQLITE_SYNC": "sometimes"})
    assert result.exit_code == 2 and "store.sqlite_sync" in result.output


def test_bad_store_url_fails_cleanly(tmp_path):
    result = CliRunner().invoke(cli, ["server", "start", "--data-dir", str(tmp_path),
                                      "--store", "redis://x"])
    assert result.exit_code == 1 and "store.url" in result.output

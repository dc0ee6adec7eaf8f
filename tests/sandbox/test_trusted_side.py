"""The trusted side around the sandbox: the agent's drain signal in a job dir the sandbox
can write, the agent's isolation check at start, `genesys check --isolation`, and a data
dir below a folder only root may enter."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from genesys.cli import cli
from genesys.gpu_agent.agent import Agent, AgentConfig
from genesys.gpu_agent.job import STOP_FILE, touch_stop_file
from genesys.gpu_agent.link import AgentFatal
from genesys.lmade.sandbox import Limits, isolation, run_sandboxed

HERE = str(Path(__file__).resolve().parent)


def test_stop_file_is_created_in_a_plain_job_dir(tmp_path):
    touch_stop_file(tmp_path)
    assert (tmp_path / STOP_FILE).is_file()


def test_stop_file_never_follows_a_planted_link(tmp_path):
    job, victim = tmp_path / "job", tmp_path / "victim"
    job.mkdir()
    (job / STOP_FILE).symlink_to(victim)
    with pytest.raises(OSError):
        touch_stop_file(job)
    assert not victim.exists()


def test_stop_file_does_not_block_on_a_planted_fifo(tmp_path):
    os.mkfifo(tmp_path / STOP_FILE)
    with pytest.raises(OSError):  # ENXIO: no reader; open(O_WRONLY) would hang instead
        touch_stop_file(tmp_path)


def test_a_job_dir_replaced_by_a_link_is_refused(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "job").symlink_to(real)
    with pytest.raises(OSError):
        touch_stop_file(tmp_path / "job")
    assert not (real / STOP_FILE).exists()


def agent(tmp_path: Path, **config) -> Agent:
    return Agent(AgentConfig(coordinator="127.0.0.1:1", token="t", work_dir=tmp_path, **config))


def test_agent_refuses_a_host_without_the_jail(tmp_path, capsys):
    with pytest.raises(AgentFatal, match="--accept-weak-isolation"):
        agent(tmp_path, isolate=False).check_isolation()
    assert "event=isolation" in capsys.readouterr().err


def test_agent_accepts_a_weak_host_when_told_to(tmp_path, capsys):
    agent(tmp_path, isolate=False, accept_weak_isolation=True).check_isolation()
    line = next(x for x in capsys.readouterr().err.splitlines() if "event=isolation" in x)
    assert "level=warning" in line and "allowlist jail" in line


@pytest.mark.skipif(not isolation().jail, reason="no allowlist jail on this host")
def test_agent_logs_the_enforced_layers(tmp_path, capsys):
    agent(tmp_path).check_isolation()
    line = next(x for x in capsys.readouterr().err.splitlines() if "event=isolation" in x)
    assert "allowlist jail" in line and "level=info" in line


def test_check_isolation_prints_the_layers():
    result = CliRunner().invoke(cli, ["check", "--isolation", "--json"])
    report = json.loads(result.output)
    assert result.exit_code == (0 if report["jail"] else 1)
    assert report["enforced"] == list(isolation().enforced)
    assert report["missing"] == list(isolation().missing)


@pytest.mark.skipif(os.geteuid() != 0 or not isolation().jail,
                    reason="the 0700 case is about a root parent that drops to a sandbox uid")
def test_data_dir_below_a_root_only_folder_is_readable(tmp_path):
    """Issue 19: as root, with the data dir below a 0700 folder, the sandbox still reads it
    (the jail's own dirs lead to it) and writes its out dir below the same folder."""
    private = tmp_path / "private"
    data, out = private / "data", private / "out"
    data.mkdir(parents=True)
    out.mkdir()
    private.chmod(0o700)
    (data / "manifest.json").write_text('{"tokens": 3}')
    result = run_sandboxed(
        "hostile_targets:read_then_write", {"read": str(data / "manifest.json"),
                                            "write": str(out / "result.txt")},
        Limits(pythonpath=(HERE,), wall_s=30, readable_dirs=(str(data),),
               writable_dirs=(str(out),)))
    assert result.ok, (result.error, result.traceback)
    assert result.value == '{"tokens": 3}'
    assert (out / "result.txt").read_text() == "written"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700

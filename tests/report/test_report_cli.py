"""`genesys report` against a real coordinator (in-process, free port)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from genesys.cli import cli
from genesys.client import Coordinator
from genesys.server.testing import local_coordinator

pytest.importorskip("matplotlib")


def test_report_command_fetches_and_writes(tmp_path):
    with local_coordinator(tmp_path / "data") as server, \
            Coordinator(server.address, server.token, retries=1) as client:
        client.create_experiment("rep", ladder="micro:4", seeds=("gpt", "retnet"))
        seeds = client.list_designs("rep")
        source = client.get_design(seeds[0].id).source
        child = client.submit_design("rep", name="gpt-tweak", parents=[seeds[0].id],
                                     source=source.replace("CONFIG = {", "CONFIG = {'v': 1, ", 1))
        for design, score in ((seeds[0], 0.61), (seeds[1], 0.55), (child, 0.7)):
            client.report_result(design.id, "micro", {"piqa": score})

        out = tmp_path / "report"
        run = CliRunner().invoke(cli, ["report", "--address", server.address, "--token", server.token,
                                       "--out", str(out), "--json"])
        assert run.exit_code == 0, run.output
        files = json.loads(run.output)
        assert files["experiment"] == "rep" and files["rung_correlations"] == []
        page = (out / "index.html").read_text()
        assert page.index("gpt-tweak") < page.index(seeds[1].name)  # ranked by fitness
        assert all((out / f).stat().st_size > 1000 for f in ("fitness.png", "quadrants.png", "lineage.png",
                                                         "pareto.png"))

        bad = CliRunner().invoke(cli, ["report", "--address", server.address, "--token", server.token,
                                       "--experiment", "nope", "--out", str(out)])
        assert bad.exit_code == 1 and "NOT_FOUND" in bad.output

"""`genesys demo` starts the dashboard next to its coordinator and says where it is."""

from __future__ import annotations

import urllib.request

from genesys.gpu_agent.demo import DemoSettings, Processes, start_dashboard

from .conftest import EXPERIMENT


def test_demo_starts_the_dashboard_and_prints_its_url(world, tmp_path):
    settings = DemoSettings(root=tmp_path, experiment=EXPERIMENT)
    settings.logs_dir.mkdir(parents=True)
    said: list[str] = []
    processes = Processes(settings)
    try:
        url = start_dashboard(world.admin, processes, world.coordinator.address, said.append)
        assert url.startswith("http://127.0.0.1:")
        assert said == [f"dashboard: {url}e/{EXPERIMENT} (live while the demo runs)"]
        with urllib.request.urlopen(f"{url}e/{EXPERIMENT}", timeout=20) as page:
            assert page.status == 200 and EXPERIMENT in page.read().decode()
    finally:
        processes.stop()
    assert processes.ui.poll() is not None


def test_demo_without_a_dashboard(world, tmp_path):
    settings = DemoSettings(root=tmp_path, ui_listen="")
    assert start_dashboard(world.admin, Processes(settings), world.coordinator.address, print) == ""

"""With --gateway the budget page shows the LLM gateway's token accounting for the
experiment (a real gateway in front of the scripted OpenAI-compatible server); without an
answering gateway it says so and the page still loads."""

from __future__ import annotations

import urllib.request

from agent.procs import free_tcp_port
from gateway.conftest import BASE, fake_server, gateway, models_toml  # noqa: F401 (fixtures)
from genesys.client.llm import LLM

from .conftest import EXPERIMENT, UiProcess


def budget_page(ui: UiProcess) -> str:
    with urllib.request.urlopen(f"{ui.url}/e/{EXPERIMENT}/budget", timeout=20) as reply:
        return reply.read().decode()


def test_budget_page_shows_the_gateways_usage(world, fake_server, gateway, tmp_path):  # noqa: F811
    model = fake_server(name="a", served_name="small")
    gw = gateway(BASE + models_toml("small", [model.url]))
    with LLM(gw.address, caller="designer-1", experiment=EXPERIMENT) as llm:
        llm.chat("propose a block", model="small")
        llm.chat("write the unit", model="small")
    ui = UiProcess(world.coordinator.address, world.submitter_token, tmp_path / "ui.log",
                   "--gateway", gw.address)
    try:
        page = budget_page(ui)
    finally:
        ui.stop()
    table = page[page.index('id="usage-gateway"'):]
    start = table.index("<td>designer-1</td>")
    row = table[start:table.index("</tr>", start)]
    assert "<td>small</td>" in row and '<td class="num">2</td>' in row


def test_a_gateway_that_does_not_answer_is_said(world, tmp_path):
    ui = UiProcess(world.coordinator.address, world.submitter_token, tmp_path / "ui.log",
                   "--gateway", f"127.0.0.1:{free_tcp_port()}")
    try:
        page = budget_page(ui)
    finally:
        ui.stop()
    assert 'id="gateway-error"' in page and "did not answer: UNAVAILABLE" in page

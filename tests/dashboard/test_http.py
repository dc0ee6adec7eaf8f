"""The dashboard's HTTP and JSON layer against a real coordinator, without a browser (so CI
covers every page even where Chromium is missing): pages render, the JSON matches the SDK,
bad input and a dead coordinator give clear pages, admin actions need an admin token, and
the event stream carries a worker's progress."""

from __future__ import annotations

import io
import json
import re
import struct
import threading
import urllib.error
import urllib.request
import zipfile

import pytest
from genesys.v1 import experiment_pb2

from .conftest import EXPERIMENT


def get(url: str, accept_error: bool = False) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        if not accept_error:
            raise
        return e.code, e.read().decode()


def post(url: str, body, token: str = "") -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("path, needle", [
    ("/", 'href="/e/dash"'),
    (f"/e/{EXPERIMENT}", 'id="ladder"'),
    (f"/e/{EXPERIMENT}/leaderboard", 'id="leaderboard-table"'),
    (f"/e/{EXPERIMENT}/leaderboard?rung=micro", f'data-src="/api/e/{EXPERIMENT}/leaderboard?rung=micro"'),
    (f"/e/{EXPERIMENT}/lineage", 'id="lineage"'),
    (f"/e/{EXPERIMENT}/jobs", "Running now"),
    (f"/e/{EXPERIMENT}/budget", 'id="usage-roles"'),
])
def test_pages_render(ui, path, needle):
    status, body = get(ui.url + path)
    assert status == 200 and needle in body
    assert "Traceback" not in body


def test_static_assets_are_served_by_the_app(ui):
    versions = json.loads(get(ui.url + "/static/vendor/versions.json")[1])
    assert set(versions) == {"htmx.org", "@highlightjs/cdn-assets", "uplot", "d3"}
    _, page = get(ui.url + f"/e/{EXPERIMENT}/lineage")
    assets = re.findall(r'<script src="([^"]+)"', page) + re.findall(r'<link rel="\w+" href="([^"]+)"', page)
    assert len(assets) >= 8 and all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        assert get(ui.url + asset)[0] == 200


def test_leaderboard_json_matches_the_sdk(ui, world):
    for rung in ("", "micro"):
        _, body = get(f"{ui.url}/api/e/{EXPERIMENT}/leaderboard?rung={rung}")
        rows = json.loads(body)["rows"]
        sdk = world.admin.leaderboard(EXPERIMENT, rung, limit=1000)
        assert [(r["id"], r["rank"]) for r in rows] == [(e.design_id, e.rank) for e in sdk]
        assert [r["score"] for r in rows] == pytest.approx([e.score for e in sdk])
    child = next(r for r in rows if r["id"] == world.child)
    assert child["stderr"] == {"cloze": pytest.approx(0.03)} and child["name"] == "gpt-retention"


def test_design_json_has_source_curves_trace_and_diff(ui, world):
    _, body = get(f"{ui.url}/api/d/{world.child}")
    d = json.loads(body)
    assert "class " in d["source"] and d["unit_tree"]["name"]
    curves = d["results"][0]["curves"]
    assert curves["x"][:3] == [0, 10, 20]
    train, val = curves["series"]
    assert train["values"][0] == pytest.approx(9.0) and val["values"][1] is None  # no val at 10
    assert [p["role"] for p in d["trace"]["prompts"]] == ["proposer", "coder"]
    assert d["check"]["checks"][1]["warning"] == "tolerance 1e-5 used"
    assert '+CONFIG = {"dash_variant": 1' in d["parents"][0]["diff"]


def test_a_seed_page_says_what_is_not_recorded(ui, world):
    _, body = get(f"{ui.url}/d/{world.seeds[0]}")
    assert body.count("not recorded") >= 3  # curves, check report, LLM calls


def test_unknown_design_is_a_clear_404(ui):
    status, body = get(ui.url + "/d/no-such-design", accept_error=True)
    assert status == 404 and "no design &#39;no-such-design&#39;" in body
    status, body = get(ui.url + "/api/d/no-such-design", accept_error=True)
    assert status == 404 and "no-such-design" in json.loads(body)["error"]
    status, body = get(ui.url + "/e/no-such-experiment", accept_error=True)
    assert status == 404 and "Traceback" not in body
    status, body = get(ui.url + f"/e/{EXPERIMENT}/leaderboard?rung=huge", accept_error=True)
    assert status == 400 and "is not a rung" in body


def test_coordinator_down_is_a_clear_page(ui_down):
    status, body = get(ui_down.url + "/")
    assert status == 200 and "does not answer" in body  # the front page stays up
    status, body = get(ui_down.url + f"/e/{EXPERIMENT}", accept_error=True)
    assert status == 503 and "does not answer" in body and "Traceback" not in body


def test_admin_actions_need_an_admin_token(ui, world):
    url = f"{ui.url}/api/admin/pause/{EXPERIMENT}"
    status, out = post(url, {})
    assert status == 401 and "needs an admin token" in out["error"]
    status, out = post(url, {}, token=world.submitter_token)
    assert status == 403 and "role submitter" in out["error"]
    status, out = post(url, {}, token="bad.token")
    assert status == 401
    assert world.admin.get_experiment(EXPERIMENT).state == experiment_pb2.EXPERIMENT_STATE_ACTIVE
    assert post(url, b"not json", token=world.admin.token)[0] == 400
    status, out = post(f"{ui.url}/api/admin/budget/{EXPERIMENT}", {"rung": "tiny", "total": -1},
                       token=world.admin.token)
    assert status == 400 and "whole number" in out["error"]
    try:
        status, out = post(url, {}, token=world.admin.token)
        assert status == 200 and "paused" in out["done"]
        assert world.admin.get_experiment(EXPERIMENT).state == experiment_pb2.EXPERIMENT_STATE_PAUSED
    finally:
        world.admin.update_experiment(EXPERIMENT, state="active")
    before = {r.rung: r.total for r in world.admin.get_budget(EXPERIMENT).ledger.rungs}["tiny"]
    try:
        status, out = post(f"{ui.url}/api/admin/budget/{EXPERIMENT}", {"rung": "tiny", "total": 5},
                           token=world.admin.token)
        assert status == 200
        assert {r.rung: r.total for r in world.admin.get_budget(EXPERIMENT).ledger.rungs}["tiny"] == 5
    finally:
        world.admin.set_budget(EXPERIMENT, "tiny", before)


def test_event_stream_carries_a_workers_progress(ui, world):
    lines: list[str] = []
    opened = threading.Event()

    def read():
        with urllib.request.urlopen(f"{ui.url}/events?experiment={EXPERIMENT}", timeout=20) as s:
            opened.set()
            for raw in s:
                lines.append(raw.decode().rstrip("\r\n"))
                if lines[-1].startswith("data: {") and '"job"' in lines[-1]:
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(10)
    for step in range(20):  # until the hub's stream has picked the subscriber up
        world.worker.report_progress(world.running, 0.5, stage="eval",
                                     metrics={"step": 900 + step, "loss": 1.25})
        reader.join(0.5)
        if not reader.is_alive():
            break
    assert "event: job-progress" in lines and "event: feed" in lines
    progress = json.loads(lines[-1].removeprefix("data: "))
    assert progress["job"] == world.running.id and "loss 1.250" in progress["html"]


def test_jobs_page_says_whose_fault_a_failure_was(ui, world):
    _, page = get(f"{ui.url}/e/{EXPERIMENT}/jobs")
    history = page[page.index("<h2>History"):]
    assert "fault-design" in history and "loss is NaN at step 3" in history


def test_runs_export_as_tensorboard_event_files(ui, world):
    from tensorboardX.proto import event_pb2

    with urllib.request.urlopen(f"{ui.url}/e/{EXPERIMENT}/export/tensorboard.zip", timeout=30) as reply:
        assert reply.headers["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(reply.read()))
    child = [n for n in archive.namelist() if n.startswith("gpt-retention-")]
    assert len(child) == 1 and "/micro/events.out.tfevents." in child[0]
    scalars: dict[str, list[tuple[int, float]]] = {}
    data = archive.read(child[0])
    while data:  # TFRecord: length (8 bytes), its crc (4), the Event, its crc (4)
        size = struct.unpack("<Q", data[:8])[0]
        event = event_pb2.Event.FromString(data[12:12 + size])
        data = data[16 + size:]
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert len(scalars["loss/train"]) == 20 and scalars["loss/train"][0] == (0, pytest.approx(9.0))
    assert [s for s, _ in scalars["loss/validation"]] == [0, 40, 80, 120, 160]
    assert scalars["metrics/cloze"] == [(190, pytest.approx(0.42))]

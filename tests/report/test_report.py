"""Report: PNGs and HTML from hand-built designs (dicts and protobuf messages)."""

from __future__ import annotations

import random
import re

import pytest
from genesys import report
from genesys.v1 import design_pb2
from google.protobuf.json_format import ParseDict

pytest.importorskip("matplotlib")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUADRANTS = ["QUADRANT_GOOD_CONFIDENT", "QUADRANT_GOOD_UNCONFIDENT", "QUADRANT_POOR_CONFIDENT",
             "QUADRANT_POOR_UNCONFIDENT"]


def hand_built(n: int = 30, seed: int = 0) -> list[dict]:
    """Five seeds, then children of random earlier designs; one failed and one unverified."""
    rng = random.Random(seed)
    designs = []
    for i in range(n):
        is_seed = i < 5
        parents = [] if is_seed else rng.sample([d["id"] for d in designs], 2 if i % 4 == 0 else 1)
        op = "SEED" if is_seed else ("CROSSOVER" if len(parents) == 2 else "MUTATION")
        fitness = round(rng.random(), 4)
        d = {"id": f"d{i:03d}", "name": f"design-{i}", "parents": parents, "seed": is_seed,
             "trace": {"operation": f"DESIGN_OPERATION_{op}"}, "fitness": fitness,
             "confidence": rng.choice([3, 3, 3, 5]), "quadrant": rng.choice(QUADRANTS),
             "state": "DESIGN_STATE_VERIFIED", "created_at": f"2026-11-30T05:{i:02d}:00Z",
             "results": [{"rung": "micro", "metrics": {"val_loss": 5 - fitness, "cloze": fitness / 2},
                          "reported_at": f"2026-11-30T05:{i:02d}:30Z"}]}
        designs.append(d)
    designs[-1].update(state="DESIGN_STATE_FAILED", results=[], fitness=0.0)
    designs[-2].update(state="DESIGN_STATE_IMPLEMENTED", results=[], fitness=0.0)
    return designs


def test_report_files_are_valid_and_html_shows_the_leaderboard(tmp_path):
    designs = hand_built()
    files = report.write_report(designs, tmp_path / "out", experiment="demo", top=10)
    for key in ("fitness", "quadrants", "lineage"):
        data = files[key].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, key
        assert f'src="{files[key].name}"' in files["html"].read_text()
    page = files["html"].read_text()
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([0-9.]+)</td>", page)
    verified = sorted((d for d in designs if d["results"]), key=lambda d: (-d["fitness"], -d["confidence"], d["id"]))
    assert [(int(r), name, i) for r, name, i, _ in rows] == [
        (k + 1, d["name"], d["id"]) for k, d in enumerate(verified[:10])]
    assert [float(f) for *_, f in rows] == sorted((float(f) for *_, f in rows), reverse=True)
    assert "demo" in page and "1 failed" in page


def test_protobuf_designs_and_layout(tmp_path):
    messages = [ParseDict(d, design_pb2.Design()) for d in hand_built(8, seed=1)]
    nodes = [report.to_node(m) for m in messages]
    assert nodes[0].operation == "seed" and nodes[5].operation in ("mutation", "crossover")
    assert nodes[0].quadrant in {q.removeprefix("QUADRANT_").lower() for q in QUADRANTS}
    assert nodes[-1].state == "failed" and not nodes[-1].verified
    pos = report.layers(nodes)
    by_id = {n.id: n for n in nodes}
    for n in nodes:  # every child sits below all of its parents
        assert all(pos[p][0] < pos[n.id][0] for p in by_id[n.id].parents)
    assert {pos[n.id][0] for n in nodes if n.seed} == {0}
    files = report.write_report(messages, tmp_path, "pb")
    assert all(p.exists() for p in files.values())


def test_empty_experiment_still_writes_a_report(tmp_path):
    files = report.write_report([], tmp_path)
    assert files["html"].exists() and files["lineage"].read_bytes().startswith(PNG_MAGIC)


def test_leaderboard_shows_intervals_labels_and_the_pareto_front(tmp_path):
    designs = hand_built(8)
    best = max(designs, key=lambda d: d["fitness"] if d["results"] else -1)
    best.update(label="gpt+MultiScaleRetention", fitness_stderr=0.0123)
    best["results"][0].update(stderr={"val_loss": 0.004}, tokens_per_second=5000.0,
                              peak_memory_bytes=1 << 20)
    page = report.write_report(designs, tmp_path, "iv")["html"].read_text()
    assert f"{best['fitness']:.4f} ± 0.0123" in page and "val_loss=" in page and "± 0.004" in page
    assert "gpt+MultiScaleRetention" in page.split("Pareto front")[1], "fastest and best"
    assert "at least 4 on both" in page, "one rung only: no correlation yet"

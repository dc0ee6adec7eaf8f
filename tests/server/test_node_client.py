"""Language neutrality: Node's @grpc/grpc-js submits a design and reads it back."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "node_client"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def node_client() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: install Node.js to run the Node gRPC client test")
    if not (HERE / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       capture_output=True, timeout=300)
    return HERE / "client.js"


def test_node_client_submits_and_reads_a_design(node_client, admin, tmp_path):
    admin.create_experiment("polyglot", ladder="micro:2", seeds=("gpt",))
    seed = admin.get_design(admin.list_designs("polyglot")[0].id)
    design_file = tmp_path / "variant.py"
    design_file.write_text(seed.source.replace("CONFIG = {", "CONFIG = {'node': 1, ", 1))
    out = subprocess.run(["node", str(node_client), admin.address, admin.token, "polyglot",
                          str(design_file), str(ROOT / "protos")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    stored = admin.get_design(got["id"])
    assert got["name"] == "from-node" and got["digest"] == stored.digest != seed.digest
    assert got["root"] == seed.tree.root and got["units"] == [u.name for u in seed.tree.units]
    assert got["state"] == "DESIGN_STATE_IMPLEMENTED"
    assert got["duplicate"].startswith("6 ") and stored.id in got["duplicate"]  # ALREADY_EXISTS

"""deploy/: images, compose file and Kubernetes manifests checked without a container runtime.

Dockerfiles are linted by hadolint and parsed; the compose file is validated against the
Compose Specification's JSON schema; every kustomize overlay is rendered by kubectl and
validated against the Kubernetes schemas."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILES = sorted((DEPLOY / "docker").glob("Dockerfile.*"))
BIN = Path(sys.executable).parent
ENTRYPOINT_ROLES = re.findall(r"^(\w[\w-]*)\)$", (DEPLOY / "docker/entrypoint.sh").read_text(), re.M)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = (DEPLOY / "VERSION").read_text().strip()


def tool(name: str) -> str:
    """A checker the tests need: the dev extra installs hadolint, check-jsonschema and
    kubernetes-validate; kubectl comes with the machine. A missing one fails, never skips."""
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    assert path, f"{name} is not installed: pip install -e '.[dev]' (kubectl: the system's package)"
    return str(path)


def test_one_version_for_all_images():
    assert VERSION == PYPROJECT["project"]["version"]
    for dockerfile in DOCKERFILES:
        assert f"ARG GENESYS_VERSION={VERSION}" in dockerfile.read_text(), dockerfile.name
    compose = (DEPLOY / "compose/compose.yaml").read_text()
    assert compose.count(f"${{GENESYS_VERSION:-{VERSION}}}") >= 4
    kustomization = yaml.safe_load((DEPLOY / "k8s/base/kustomization.yaml").read_text())
    assert {image["newTag"] for image in kustomization["images"]} == {VERSION}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_lints_clean(dockerfile: Path):
    run = subprocess.run([tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_names_only_files_that_exist(dockerfile: Path):
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()))
    stages = set()
    entrypoints, users, extras = [], [], set()
    for instruction in parser.structure:
        cmd, value = instruction["instruction"], instruction["value"]
        if cmd == "FROM":
            if " AS " in value.upper():
                stages.add(value.split()[-1])
        elif cmd == "COPY":
            parts = value.split()
            if parts[0].startswith("--from="):
                assert parts[0].removeprefix("--from=") in stages, value
                continue
            for source in parts[:-1]:
                assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
        elif cmd == "ENTRYPOINT":
            entrypoints.append(json.loads(value))
        elif cmd == "USER":
            users.append(value)
        elif cmd == "RUN":
            extras.update(re.findall(r"\.whl\[([\w,]+)\]", value))
    assert entrypoints and users, "every image has an entrypoint and a user"
    assert all(user.split(":")[0] not in ("0", "root") for user in users), "images run as non-root"
    assert {e[0] for e in entrypoints} == {"genesys-entrypoint"}
    assert {e[1] for e in entrypoints} <= set(ENTRYPOINT_ROLES)
    known = set(PYPROJECT["project"]["optional-dependencies"])
    for group in extras:
        assert set(group.split(",")) <= known, f"{dockerfile.name}: unknown extra in [{group}]"
    assert "HEALTHCHECK" in dockerfile.read_text()


def test_dockerignore_keeps_secrets_and_venvs_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", "deploy/compose/secrets", "deploy/compose/certs", "tests"):
        assert entry in ignored


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose/compose.yaml").read_text())


def test_compose_file_validates_against_the_compose_spec():
    run = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                          str(DEPLOY / "compose/compose.yaml")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_wires_state_secrets_and_tls():
    compose = _compose()
    services = compose["services"]
    assert {"mongo", "milvus", "coordinator", "gateway", "dashboard", "agent"} <= set(services)
    assert "--replSet" in services["mongo"]["command"]
    assert "rs.initiate" in " ".join(services["mongo"]["healthcheck"]["test"])
    assert "replicaSet=rs0" in (DEPLOY / "compose/init-secrets.sh").read_text()
    # every piece of state on a named volume
    for name in ("mongo", "milvus", "coordinator", "gateway", "agent"):
        mounts = [m.split(":")[0] for m in services[name]["volumes"]]
        assert any(m in compose["volumes"] for m in mounts), name
    # secrets come from files that the documented scripts write
    made_by_scripts = {"ca.pem", "server.pem", "server.key", "store_url", "gateway.toml", "llm_token"}
    for secret in compose["secrets"].values():
        assert Path(secret["file"]).name in made_by_scripts
    # TLS on by default: nothing turns it off
    assert "GENESYS_TLS: off" not in (DEPLOY / "compose/compose.yaml").read_text()
    assert services["agent"]["deploy"]["replicas"] == "${GENESYS_AGENTS:-1}"
    assert services["agent"]["stop_grace_period"]


def _render(overlay: str) -> list[dict]:
    run = subprocess.run([tool("kubectl"), "kustomize", str(DEPLOY / "k8s/overlays" / overlay)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s/overlays").iterdir())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_against_the_kubernetes_schemas(overlay: str):
    import kubernetes_validate

    docs = _render(overlay)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "coordinator"), ("Service", "coordinator"), ("DaemonSet", "agent"),
            ("Deployment", "gateway"), ("Deployment", "dashboard")} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)


def _by(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_gpu_overlay_gives_each_node_agent_all_its_gpus():
    docs = _render("gpu-cluster")
    agent = _by(docs, "DaemonSet", "agent")["spec"]["template"]["spec"]
    container = agent["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert agent["nodeSelector"] == {"genesys.io/gpu-node": "true"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GENESYS_AGENT_GPUS"] == "all"
    gateway = _by(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert gateway["resources"]["limits"]["nvidia.com/gpu"] == 2


def test_cpu_overlay_requests_no_gpus():
    docs = _render("cpu")
    agent = _by(docs, "DaemonSet", "agent")["spec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in json.dumps(agent)
    assert {e["name"]: e["value"] for e in agent["env"]}["GENESYS_AGENT_GPUS"] == "none"
    assert agent["image"].startswith("genesys/agent-cpu:")


def test_agents_reach_only_the_coordinator_gateway_and_dns():
    docs = _render("gpu-cluster")
    policy = _by(docs, "NetworkPolicy", "agent-egress-only-coordinator-gateway")["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "agent"}
    assert policy["ingress"] == [] and set(policy["policyTypes"]) == {"Ingress", "Egress"}
    targets = set()
    for rule in policy["egress"]:
        for peer in rule["to"]:
            labels = peer["podSelector"]["matchLabels"]
            targets.add(labels.get("app.kubernetes.io/name") or labels.get("k8s-app"))
        assert all("port" in p for p in rule["ports"])
    assert targets == {"coordinator", "gateway", "kube-dns"}


def test_no_secret_material_is_committed():
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "PRIVATE KEY-----" not in text, path

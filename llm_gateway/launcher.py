"""Start and supervise vLLM OpenAI-compatible server processes, restarting them with backoff.

vLLM runs from its own virtual environment (named in the config) so its pins (torch,
transformers) never constrain the platform's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from genesys.llm_gateway.config import (
    DEFAULT_MODEL,
    DEFAULT_VLLM_PACKAGE,
    LaunchConfig,
    ModelConfig,
    default_model_dir,
    default_vllm_venv,
)
from genesys.llm_gateway.pool import Replica, State
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

log = logging.getLogger("genesys.llm_gateway")
STOP_GRACE_S = 15.0


class LaunchError(RuntimeError):
    """A launch entry cannot run (vLLM missing, model missing); the message says what to do."""


class ProcessExited(Exception):
    pass


def vllm_python(launch: LaunchConfig, data_dir: Path) -> Path:
    if launch.python:
        return Path(launch.python)
    venv = Path(launch.venv) if launch.venv else default_vllm_venv(data_dir)
    return venv / "bin" / "python"


def check_vllm(python: Path, where: str, env: dict[str, str] | None = None) -> None:
    """Fail with the install instructions when `python` cannot import vLLM."""
    hint = (
        f"run `genesys gateway prepare-vllm` (creates a venv with {DEFAULT_VLLM_PACKAGE} for CPU; "
        "`--package vllm==<version>` for GPUs), or point "
        f"{where}.venv / {where}.python at an environment with vLLM installed"
    )
    if not python.exists():
        raise LaunchError(f"{where}: no Python at {python}; {hint}")
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('vllm') is None)"],
        capture_output=True, timeout=60, env=env,
    )
    if probe.returncode != 0:
        raise LaunchError(f"{where}: vLLM is not installed in {python}; {hint}")


def resolve_model(name: str, launch: LaunchConfig, data_dir: Path) -> str:
    if launch.model:
        return launch.model
    path = default_model_dir(data_dir, name if name == DEFAULT_MODEL else DEFAULT_MODEL)
    if not (path / "config.json").exists():
        raise LaunchError(
            f"models.{name}.launch.model is empty and the default model is not prepared at {path}; "
            f"run `genesys gateway prepare-model {DEFAULT_MODEL}` or set models.{name}.launch.model"
        )
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmProcess:
    """One supervised vLLM server: started, watched, restarted with exponential backoff."""

    def __init__(self, name: str, model: ModelConfig, index: int, data_dir: Path) -> None:
        assert model.launch is not None
        self.name, self.model, self.launch, self.index = name, model, model.launch, index
        self.data_dir = data_dir
        self.port = self.launch.port + index if self.launch.port else free_port()
        self.replica = Replica(model=name, url=f"http://127.0.0.1:{self.port}", launched=True,
                               state=State.STOPPED)
        self.python = vllm_python(self.launch, data_dir)
        self.model_path = resolve_model(name, self.launch, data_dir)
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False

    def command(self) -> list[str]:
        launch = self.launch
        return [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model_path,
            "--served-model-name", self.model.served_name or self.name,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--max-model-len", str(self.model.max_context),
            "--tensor-parallel-size", str(launch.tensor_parallel_size),
            *launch.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        hf_home = self.data_dir / "hf"
        env.update({
            "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
            "VLLM_CACHE_ROOT": str(self.data_dir / "vllm-cache"),
        })
        tp = self.launch.tensor_parallel_size
        if self.launch.gpus:
            gpus = self.launch.gpus[self.index * tp:(self.index + 1) * tp]
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
        env.update(self.launch.env)
        return env

    async def supervise(self) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=1.0, min=1.0, max=60.0),
            retry=retry_if_exception_type(ProcessExited),
        )
        async for attempt in retrying:
            with attempt:
                await self._run_once()

    async def _run_once(self) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"vllm-{self.name}-{self.index}.log"
        with open(log_path, "ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdout=out, stderr=subprocess.STDOUT, env=self.environment(),
                start_new_session=True,  # its own process group: stop() ends vLLM's workers too
            )
        self.replica.set_state(State.STARTING)
        log.info("event=vllm_start model=%s replica=%d pid=%d url=%s log=%s",
                 self.name, self.index, self._proc.pid, self.replica.url, log_path)
        started = time.monotonic()
        while True:
            try:
                code = await asyncio.wait_for(self._proc.wait(), timeout=1.0)
                break
            except TimeoutError:
                if (self.replica.state is State.STARTING
                        and time.monotonic() - started > self.launch.startup_timeout_s):
                    log.warning("event=vllm_startup_timeout model=%s replica=%d", self.name, self.index)
                    await self._terminate()
        self.replica.set_state(State.STOPPED, f"vLLM exited with code {code} (log: {log_path})")
        if self._stopping:
            return
        raise ProcessExited(f"vLLM for {self.name} exited with code {code}")

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def stop(self) -> None:
        self._stopping = True
        await self._terminate()


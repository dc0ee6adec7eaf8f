"""Checker latency: wall time of a full ``check`` per seed at the default check scale.

For each seed: the median wall time of several full checks (format in the parent, then a
fresh sandboxed child that imports torch and runs init -> efficiency), next to the median
time of one bare forward+backward of the same model (same autotuned shape, batch and
sequence length, one thread as in the sandbox) measured in this process. The ratio says
how many bare training steps one check costs; the child's CPU seconds do not depend on
other load on the machine. "flips" is the share of runs whose verdict differs from the
seed's most common one (it should be 0%, on a busy machine too). Aim: a check under 20 s
per seed on an idle 2-core machine.

    python bench/check_latency.py [--runs 3] [--seeds gpt mamba2 ...] [--hog]

``--hog`` runs a CPU-burning process beside the checks (a busy machine): the verdicts must
not change.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from genesys.lmade import seeds
from genesys.lmade.checker import CheckSettings, check
from genesys.lmade.model import GenesysLM, autotune
from genesys.lmade.scales import get_scale


def bare_step_s(seed: str, settings: CheckSettings, repeats: int = 10) -> float:
    """Median time of one forward+backward of the seed's model at the checker's shape."""
    design = seeds.get(seed)
    d_model, n_block = autotune(design, get_scale(settings.scale), settings.vocab_size)
    model = GenesysLM(design, d_model, n_block, settings.vocab_size, settings.seq_len)
    x = torch.randint(0, settings.vocab_size, (settings.batch_size, settings.seq_len + 1))
    times = []
    for i in range(repeats + 2):
        started = time.perf_counter()
        logits = model(x[:, :-1])
        F.cross_entropy(logits.reshape(-1, settings.vocab_size), x[:, 1:].reshape(-1)).backward()
        if i >= 2:  # warm-up steps pay one-off costs
            times.append(time.perf_counter() - started)
        model.zero_grad(set_to_none=True)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seeds", nargs="*", default=seeds.names())
    parser.add_argument("--hog", action="store_true", help="burn a CPU beside the checks")
    args = parser.parse_args()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.hog else None
    try:
        measure(args)
    finally:
        if hog is not None:
            hog.kill()


def measure(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    settings = CheckSettings()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'seed':<8} {'check s (median)':>17} {'min':>6} {'max':>6} {'child CPU s':>12} "
          f"{'bare fwd+bwd ms':>16} {'ratio':>8}  {'flips':>5}  verdicts")
    for seed in args.seeds:
        walls, cpus, verdicts = [], [], collections.Counter()
        for _ in range(args.runs):
            report = check(seed)
            walls.append(report.seconds)
            cpus.append(report.sandbox.get("cpu_s") or 0.0)
            failed = report.failed
            verdicts["valid" if report.valid else f"INVALID at {failed.name if failed else '?'}"] += 1
        bare = bare_step_s(seed, settings)
        median = statistics.median(walls)
        print(f"{seed:<8} {median:>17.2f} {min(walls):>6.2f} {max(walls):>6.2f} "
              f"{statistics.median(cpus):>12.2f} {bare * 1000:>16.1f} {median / bare:>8.0f}x  "
              f"{1 - verdicts.most_common(1)[0][1] / args.runs:>5.0%}  "
              f"{', '.join(f'{v} x{n}' for v, n in sorted(verdicts.items()))}")


if __name__ == "__main__":
    main()

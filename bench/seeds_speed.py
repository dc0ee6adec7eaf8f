"""Training-step time and peak memory of every seed design against the GPT seed.

For each scale, every seed is auto-tuned to the rung, built with random weights and timed
on forward + backward of a next-token loss over random tokens at the rung's context; each
model runs in a fresh subprocess so peak memory is its own (CPU: growth of the peak RSS
over the RSS before the first step; CUDA: torch.cuda.max_memory_allocated). Prints each
seed's step time (best of the timed steps: wall clock, and on CPU also the process CPU
time, which is steadier on a shared machine), peak memory, and the ratios to GPT at the
same scale.

    python bench/seeds_speed.py                    # CPU, micro and 14M
    python bench/seeds_speed.py --gpu              # CUDA, 125M in bf16 autocast
    python bench/seeds_speed.py --scales micro --seeds gpt rwkv6 --threads 1

The batch holds --tokens tokens (default 4096 on CPU, 16384 on CUDA) at the rung's context
unless --batch is given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SEEDS = ["gpt", "mamba2", "retnet", "rwkv6", "ttt"]


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(seed: str, scale: str, batch: int | None, tokens: int, context: int | None, steps: int, vocab: int,
            gpu: bool, threads: int | None) -> dict:
    """Time `steps` training steps of one seed (runs inside the child process)."""
    import torch
    import torch.nn.functional as F
    from genesys.lmade import build_lm, count_params, seeds

    torch.set_flush_denormal(True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = "cuda" if gpu else "cpu"
    model = build_lm(seeds.get(seed), scale, vocab, device=device)
    L = context or model.context
    batch = batch or max(1, tokens // L)
    ids = torch.randint(0, vocab, (batch, L + 1), device=device)
    params = [p for p in model.parameters() if p.requires_grad]

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=gpu):
            logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        for p in params:
            p.grad = None

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()

    base_rss = current_rss_bytes()
    step()  # warm-up (allocator, kernels)
    sync()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    if gpu:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
    return {
        "seed": seed, "scale": scale, "d_model": model.d_model, "n_block": model.n_block,
        "params": count_params(model), "batch": batch, "context": L,
        "step_s": min(times), "cpu_s": min(cpu_times), "peak_mb": peak / 2**20,
    }


def run_child(args: argparse.Namespace, seed: str, scale: str) -> dict:
    cmd = [sys.executable, __file__, "--child", seed, "--scales", scale, "--tokens", str(args.tokens),
           "--steps", str(args.steps), "--vocab", str(args.vocab)]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    if args.context:
        cmd += ["--context", str(args.context)]
    if args.gpu:
        cmd.append("--gpu")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{seed} at {scale} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=None)
    ap.add_argument("--seeds", nargs="+", default=SEEDS)
    ap.add_argument("--batch", type=int, default=None, help="sequences per step (default: from --tokens)")
    ap.add_argument("--tokens", type=int, default=None, help="tokens per step (default 4096, CUDA 16384)")
    ap.add_argument("--context", type=int, default=None, help="default: the rung's context")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--gpu", action="store_true", help="CUDA, bf16 autocast; default scale 125M")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    scales = args.scales or (["125M"] if args.gpu else ["micro", "14M"])
    args.tokens = args.tokens or (16384 if args.gpu else 4096)
    if args.child:
        print(json.dumps(measure(args.child, scales[0], args.batch, args.tokens, args.context, args.steps,
                                 args.vocab, args.gpu, args.threads)))
        return
    seeds = ["gpt"] + [s for s in args.seeds if s != "gpt"]
    device = "cuda bf16" if args.gpu else f"cpu x{os.cpu_count()}"
    print(f"device={device} threads={args.threads or 'default'} vocab={args.vocab} steps={args.steps}")
    print(f"{'scale':6} {'seed':7} {'d':>5} {'n':>3} {'params':>11} {'B':>3} {'L':>5} {'wall_s':>7} {'cpu_s':>7}"
          f" {'peak_MB':>8} {'wall/gpt':>8} {'cpu/gpt':>8} {'mem/gpt':>8}")
    for scale in scales:
        ref = None
        for seed in seeds:
            r = run_child(args, seed, scale)
            ref = ref or r
            print(f"{scale:6} {seed:7} {r['d_model']:5d} {r['n_block']:3d} {r['params']:11,d} {r['batch']:3d}"
                  f" {r['context']:5d} {r['step_s']:7.3f} {r['cpu_s']:7.3f} {r['peak_mb']:8.1f}"
                  f" {r['step_s'] / ref['step_s']:8.2f} {r['cpu_s'] / ref['cpu_s']:8.2f}"
                  f" {r['peak_mb'] / max(ref['peak_mb'], 1e-9):8.2f}", flush=True)


if __name__ == "__main__":
    main()

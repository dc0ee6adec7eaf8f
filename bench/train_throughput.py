"""Throughput of `genesys.lmade.train` against a minimal hand-written loop, same model + data.

Prints tokens/s of both and their ratio (aim >= 0.95), and the data loader's tokens/s
against what the training step consumes. With --gpu, the ratio is measured on the GPU and
the model FLOPs utilisation of the GPT seed at 125M in bf16 is added (6 N + 12 n_block d L
FLOPs per token, against --peak-tflops).

    python bench/train_throughput.py [--data DIR] [--scale micro] [--steps 30] [--gpu]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from genesys.lmade import build_lm, seeds
from genesys.lmade.data import PreparedData, PrepareRequest, TokenBatches, prepare
from genesys.lmade.monitor import MonitorConfig
from genesys.lmade.trainer import (
    TrainConfig,
    autocast_for,
    lm_loss,
    lr_lambda,
    make_optimizer,
    train,
)

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def hand_loop(
    data: PreparedData, scale: str, cfg: TrainConfig, steps: int, device: torch.device
) -> float:
    """The reference: the same model, optimizer, schedule and batches, nothing else."""
    torch.manual_seed(cfg.seed)
    model = build_lm(seeds.get("gpt"), scale, data.vocab_size, device=device)
    opt = make_optimizer(model, cfg.lr, cfg, device)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(steps, cfg.warmup_frac, cfg.min_lr_ratio)
    )
    batches = TokenBatches(data.shards("train"), cfg.context, cfg.batch_size, cfg.seed)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        x, y = batches.batch(step)
        with autocast_for(device, cfg.precision):
            loss = lm_loss(model, x.to(device), y.to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # the trainer reads the loss every step too
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * cfg.batch_size * cfg.context / (time.perf_counter() - start)


def genesys_train(
    data: PreparedData, scale: str, cfg: TrainConfig, steps: int
) -> tuple[float, object]:
    cfg = TrainConfig(**{**cfg.__dict__, "tokens": steps * cfg.batch_size * cfg.context})
    result = train(seeds.get("gpt"), scale, data, cfg, progress_bar=False)
    return result.tokens_per_s, result


def loader_rate(data: PreparedData, cfg: TrainConfig, steps: int) -> float:
    batches = TokenBatches(data.shards("train"), cfg.context, cfg.batch_size, cfg.seed)
    start = time.perf_counter()
    for step in range(steps):
        batches.batch(step)
    return steps * cfg.batch_size * cfg.context / (time.perf_counter() - start)


def mfu(result, tokens_per_s: float, peak_tflops: float) -> float:
    n = result.params  # non-embedding + the tied head's matmul (the lookup itself is free)
    ctx = result.config["context"]
    flops_per_token = 6 * n + 12 * result.n_block * result.d_model * ctx
    return flops_per_token * tokens_per_s / (peak_tflops * 1e12)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", help="prepared dataset (default: Jane Austen from Debian, BPE 8k)")
    p.add_argument("--scale", default="micro")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2, help="best of N for each side")
    p.add_argument(
        "--gpu", action="store_true", help="measure on the GPU; add MFU of GPT at 125M, bf16"
    )
    p.add_argument("--peak-tflops", type=float, help="bf16 dense peak of the GPU (default by name)")
    args = p.parse_args()
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu: no CUDA device")
    device = torch.device("cuda" if args.gpu else "cpu")  # the ratio is measured here
    torch.set_flush_denormal(True)
    data = PreparedData(
        args.data or prepare(PrepareRequest(sources=("debian:r-cran-janeaustenr",)))
    )
    cfg = TrainConfig(
        context=args.context,
        batch_size=args.batch_size,
        lr=1e-3,
        device=device.type,
        eval_every=10**9,
        checkpoint_every=10**9,
        progress_interval_s=1e9,
        monitor=MonitorConfig(slowdown_factor=1e9),
    )
    hand, ours = 0.0, 0.0
    for _ in range(args.repeats):  # interleaved, so that drift of the host hits both
        hand = max(hand, hand_loop(data, args.scale, cfg, args.steps, device))
        ours = max(ours, genesys_train(data, args.scale, cfg, args.steps)[0])
    print(
        f"device={device.type} scale={args.scale} context={cfg.context} "
        f"batch={cfg.batch_size} steps={args.steps}"
    )
    print(
        f"hand_loop_tokens_per_s={hand:.0f} train_tokens_per_s={ours:.0f} ratio={ours / hand:.3f}"
    )
    load = loader_rate(data, cfg, args.steps * 4)
    print(
        f"loader_tokens_per_s={load:.0f} step_demand_tokens_per_s={ours:.0f} headroom={load / ours:.1f}x"
    )
    if args.gpu:
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if peak is None:
            raise SystemExit(f"unknown peak for {name!r}; pass --peak-tflops")
        gpu_cfg = TrainConfig(
            context=2048,
            batch_size=16,
            device="cuda",
            precision="bf16",
            compile=True,
            eval_every=10**9,
            checkpoint_every=10**9,
            progress_interval_s=1e9,
            monitor=MonitorConfig(slowdown_factor=1e9),
        )
        gpu_cfg.progress_interval_s = 0.0
        steps = max(40, args.steps)
        stamps: list[tuple[float, int]] = []
        result = train(
            seeds.get("gpt"),
            "125M",
            data,
            TrainConfig(**{**gpu_cfg.__dict__, "tokens": steps * 16 * 2048}),
            on_event=lambda e: (
                e["event"] == "progress" and stamps.append((time.perf_counter(), e["tokens"]))
            ),
            progress_bar=False,
        )
        (t0, k0), (t1, k1) = stamps[len(stamps) // 2], stamps[-1]  # second half: compiled, warm
        tps = (k1 - k0) / (t1 - t0)
        print(
            f"gpu={name} scale=125M params={result.params} tokens_per_s={tps:.0f} "
            f"mfu={mfu(result, tps, peak):.3f} (peak {peak} TFLOPs bf16, steady state)"
        )
    assert math.isfinite(ours)


if __name__ == "__main__":
    main()

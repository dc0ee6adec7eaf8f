"""Signal against noise of every fitness metric: designs x training seeds x token budgets.

Each design (a seed of the tree) is verified as a VERIFY job verifies it
(genesys.lmade.verify.verify: sandboxed training, trusted scoring; the checker is skipped,
the seeds pass it) at one rung with each training seed and each token budget; the
evaluation items come from the fixed evaluation seed, the same for every run. Per budget and metric it prints

    b    = spread between the designs' means (max - min over designs of the mean over seeds)
    a    = mean over designs of the spread between that design's seeds (max - min)
    b/a  = how far the designs stand apart in units of seed noise (> ~3: the metric ranks
           designs; < 1: it is noise)
    se   = the median standard error the run reported for the metric (when it reports one)
    same = whether every training seed ranks the designs in the same order

so a user can choose a rung's token budget and the metrics that count there. The JSON of
every run goes to --out (default: print only).

    python bench/fitness_noise.py                                  # micro: 3 designs x 2 seeds x 65k, 250k
    python bench/fitness_noise.py --budgets 65536 262144 1048576 --designs gpt retnet rwkv6 ttt
    python bench/fitness_noise.py --scale 14M --gpu --budgets 1000000 5000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

# metric -> (label, higher is better)
METRICS = {
    "val_loss": ("val_loss", False),
    "bits_per_byte": ("bits per byte", False),
    "genesys_cloze": ("cloze (normalised acc)", True),
    "genesys_nextsent": ("next-sentence (normalised acc_norm)", True),
    "fitness": ("verify's fitness", True),
}


def run_one(design: str, seed: int, tokens: int, args: argparse.Namespace, data_dir: str,
            work: Path) -> dict:
    from genesys.gpu_agent.job import verify_metrics
    from genesys.lmade.verify import verify

    value = verify(design, args.scale, tokens=tokens, data_dir=data_dir, seed=seed,
                   out_dir=work / f"{design}-{tokens}-{seed}", check=False,
                   train={"eval_every": 10**9, "precision": "auto" if args.gpu else "fp32",
                          "device": "cuda" if args.gpu else "cpu"},
                   eval={"n_items": args.items})
    metrics, stderr = verify_metrics(value)
    if value.get("fitness") is not None:
        metrics["fitness"] = float(value["fitness"])
        if value.get("fitness_stderr") is not None:
            stderr["fitness"] = float(value["fitness_stderr"])
    return {"design": design, "seed": seed, "tokens": tokens, "status": value["status"],
            "reason": value.get("reason"), "metrics": metrics, "stderr": stderr,
            "cpu_s": (value.get("sandbox") or {}).get("cpu_s"), "wall_s": value.get("total_wall_s")}


def order(means: dict[str, float], higher: bool) -> list[str]:
    return sorted(means, key=lambda d: -means[d] if higher else means[d])


def table(runs: list[dict], designs: list[str], seeds: list[int]) -> list[dict]:
    """One row per (budget, metric): b, a, b/a, median se, and whether seeds agree."""
    rows = []
    for tokens in sorted({r["tokens"] for r in runs}):
        for metric, (label, higher) in METRICS.items():
            value = {(r["design"], r["seed"]): r["metrics"][metric] for r in runs
                     if r["tokens"] == tokens and metric in r["metrics"]}
            if len(value) < len(designs) * len(seeds):
                continue
            means = {d: statistics.mean(value[d, s] for s in seeds) for d in designs}
            b = max(means.values()) - min(means.values())
            a = statistics.mean(max(value[d, s] for s in seeds) - min(value[d, s] for s in seeds)
                                for d in designs)
            errors = [r["stderr"][metric] for r in runs
                      if r["tokens"] == tokens and metric in r["stderr"]]
            per_seed = [order({d: value[d, s] for d in designs}, higher) for s in seeds]
            rows.append({"tokens": tokens, "metric": metric, "label": label, "b": b, "a": a,
                         "ratio": b / a if a else (float("inf") if b else 0.0),
                         "se": statistics.median(errors) if errors else None,
                         "same_order": all(p == per_seed[0] for p in per_seed),
                         "order": per_seed[0]})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'tokens':>9}  {'metric':<36} {'b':>8} {'a':>8} {'b/a':>7} {'se':>8}  same  order (seed 1)")
    for r in rows:
        se = f"{r['se']:.4f}" if r["se"] is not None else "-"
        print(f"{r['tokens']:>9}  {r['label']:<36} {r['b']:>8.4f} {r['a']:>8.4f} "
              f"{r['ratio']:>7.2f} {se:>8}  {'yes' if r['same_order'] else 'no ':<4}  "
              f"{' > '.join(r['order'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--designs", nargs="+", default=["gpt", "retnet", "rwkv6"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--budgets", nargs="+", type=int, default=[65_536, 262_144])
    parser.add_argument("--scale", default="micro")
    parser.add_argument("--items", type=int, default=200, help="items per offline task")
    parser.add_argument("--data", default="", help="a prepared dataset (default: the offline corpus)")
    parser.add_argument("--corpus-mb", type=float, default=8.0)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--out", default="", help="write every run and the table as JSON here")
    args = parser.parse_args()

    import tempfile

    from genesys.lmade.data import PrepareRequest, prepare

    data_dir = args.data or str(prepare(PrepareRequest(max_mb=args.corpus_mb)))
    work = Path(tempfile.mkdtemp(prefix="fitness-noise-"))
    runs = []
    for tokens in args.budgets:
        for design in args.designs:
            for seed in args.seeds:
                run = run_one(design, seed, tokens, args, data_dir, work)
                runs.append(run)
                shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(run["metrics"].items()))
                print(f"tokens={tokens} design={design} seed={seed} status={run['status']} "
                      f"cpu_s={run['cpu_s']} wall_s={run['wall_s']} {shown}", file=sys.stderr, flush=True)
    rows = table(runs, args.designs, args.seeds)
    print(f"scale={args.scale} designs={','.join(args.designs)} seeds={','.join(map(str, args.seeds))} "
          f"items={args.items} device={'cuda' if args.gpu else 'cpu'}")
    print_table(rows)
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": runs, "table": rows}, indent=1))


if __name__ == "__main__":
    main()

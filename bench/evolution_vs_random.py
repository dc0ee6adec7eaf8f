"""Evolution vs random parents: does the coordinator's selection policy beat uniformly
random parent choice (the paper's "Base" ablation) at equal budget?

For each seed and each policy, one experiment runs the whole loop of `genesys demo` (one
coordinator, K local agents with the recombination designer, verification at one rung):
the seeds are verified once (every run starts from these results, so all runs share one
baseline), then each run evolves and verifies N new designs with the same token budget. Only the parent choice differs: "quadrant" is the paper's policy (fitness x
confidence quadrants, rank-weighted), "uniform" draws parents uniformly at random from the
usable designs (SelectionConfig.parent_policy). Each run seeds its selection stream; runs
of the two policies alternate so that machine load drifts affect both alike. The
coordinator store is fresh for every bench invocation.

Fitness inside an experiment is normalised across its own designs, so it cannot be
compared between experiments. The gain is measured on the rung score instead (the mean
advantage over random guessing of the benchmark suite at the rung, the leaderboard's
per-rung score): population gain = mean score of the new verified designs - mean score of
the seeds; best gain = best score of all designs - best seed score.

    python bench/evolution_vs_random.py [--seeds 2] [--designs 3] [--tokens 16000]
                                        [--workers 2] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from genesys.client.coordinator import Coordinator
from genesys.gpu_agent.demo import (
    DemoSettings,
    Follower,
    Processes,
    ensure_experiment,
    prepare_data,
)
from genesys.v1 import design_pb2

POLICIES = ("quadrant", "uniform")


def set_policy(client: Coordinator, experiment: str, policy: str, seed: int) -> None:
    config = client.get_experiment(experiment).config
    if "parent_policy" not in config.selection.DESCRIPTOR.fields_by_name:
        raise SystemExit("this coordinator has no SelectionConfig.parent_policy: cannot run the "
                         "uniform-parents ablation")
    config.selection.parent_policy = policy
    config.selection.seed = 1000 + seed
    client.update_experiment(experiment, config)


def gains(client: Coordinator, experiment: str, rung: str) -> dict:
    """Rung scores of seeds and new designs, and the population / best gains."""
    designs = client.list_designs(experiment, limit=1000)
    scores = {e.design_id: e.score for e in client.leaderboard(experiment, rung, limit=1000)}
    verified = [d for d in designs if d.state == design_pb2.DESIGN_STATE_VERIFIED and d.id in scores]
    seeds = [scores[d.id] for d in verified if d.seed]
    new = [scores[d.id] for d in verified if not d.seed]
    nan = float("nan")
    names = {d.id: d.name for d in designs}
    children = [{"name": d.name, "parents": [names.get(p, p) for p in d.parents],
                 "score": round(scores[d.id], 4) if d.id in scores else None}
                for d in designs if not d.seed]
    return {
        "children": children,
        "designs": len(designs), "seeds_verified": len(seeds), "new_verified": len(new),
        "failed": sum(d.state == design_pb2.DESIGN_STATE_FAILED for d in designs),
        "population_gain": statistics.fmean(new) - statistics.fmean(seeds) if new and seeds else nan,
        "best_gain": max(seeds + new) - max(seeds) if seeds else nan,
    }


def run_loop(client: Coordinator, settings: DemoSettings, address: str, worker_token: str,
             prepare: Callable[[str], None]) -> float:
    """Create the experiment, let `prepare` adjust it, run agents until its designs settle."""
    target = ensure_experiment(client, settings, lambda line: None)
    prepare(settings.experiment)
    agents = Processes(settings)
    started = time.monotonic()
    try:
        agents.start_agents(address, worker_token)
        Follower(client, settings, target).run(agents)
    finally:
        agents.stop()
    return round(time.monotonic() - started, 1)


def verify_seeds(client: Coordinator, base: DemoSettings, address: str, worker_token: str
                 ) -> dict[str, design_pb2.RungResult]:
    """Verify the seeds once; every run starts from these results (same baseline, less time)."""
    settings = dataclasses.replace(base, experiment="evo-seeds", designs=0)
    wall = run_loop(client, settings, address, worker_token, lambda name: None)
    results = {}
    for d in client.list_designs(settings.experiment, limit=1000):
        found = [r for r in client.get_design(d.id).results if r.rung == base.scale]
        if found:
            results[d.name] = found[0]
    print(f"seeds verified at {base.scale} in {wall:.0f} s: {', '.join(sorted(results)) or 'none'}",
          flush=True)
    return results


def run_one(client: Coordinator, base: DemoSettings, address: str, worker_token: str,
            seed_results: dict[str, design_pb2.RungResult], policy: str, seed: int) -> dict:
    settings = dataclasses.replace(base, experiment=f"evo-{policy}-{seed}")

    def prepare(experiment: str) -> None:
        set_policy(client, experiment, policy, seed)
        for d in client.list_designs(experiment, limit=1000):
            if d.seed and d.name in seed_results:
                r = seed_results[d.name]
                client.report_result(d.id, r.rung, dict(r.metrics), r.metrics_json)

    wall = run_loop(client, settings, address, worker_token, prepare)
    result = {"policy": policy, "seed": seed, "wall_s": wall,
              **gains(client, settings.experiment, settings.scale)}
    print(json.dumps(result), flush=True)
    return result


def mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else float("nan")


def summarise(results: list[dict]) -> None:
    print(f"\n{'policy':<10} {'runs':>4} {'new verified':>12} {'population gain':>16} {'best gain':>10}")
    means = {}
    for policy in POLICIES:
        rows = [r for r in results if r["policy"] == policy]
        means[policy] = {k: mean([r[k] for r in rows]) for k in ("population_gain", "best_gain")}
        print(f"{policy:<10} {len(rows):>4} {sum(r['new_verified'] for r in rows):>12} "
              f"{means[policy]['population_gain']:>16.4f} {means[policy]['best_gain']:>10.4f}")
    for key in ("population_gain", "best_gain"):
        q, u = means["quadrant"][key], means["uniform"][key]
        ratio = f"{q / u:.2f}" if q > 0 and u > 0 else "n/a: a gain is <= 0"
        print(f"{key}: selection - uniform = {q - u:+.4f} (ratio selection/uniform {ratio})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="runs per policy")
    parser.add_argument("--designs", type=int, default=3, help="new designs per run (equal budget)")
    parser.add_argument("--tokens", type=int, default=16_000, help="training tokens per verification")
    parser.add_argument("--scale", default="micro")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path(".genesys/bench-evolution"))
    args = parser.parse_args()

    base = DemoSettings(designs=args.designs, scale=args.scale, workers=args.workers,
                        root=args.data_dir.expanduser().resolve(), tokens=args.tokens,
                        progress=False, timeout_s=1800.0)
    for folder in (base.coordinator_dir, base.root / "agents"):
        shutil.rmtree(folder, ignore_errors=True)
    base.logs_dir.mkdir(parents=True, exist_ok=True)
    prepare_data(base, print)
    coordinator = Processes(dataclasses.replace(base, experiment="evo-coordinator"))
    results = []
    try:
        address = coordinator.start_coordinator()
        token = (base.coordinator_dir / "token").read_text().strip()
        with Coordinator(address, token, timeout=30.0) as client:
            worker_token = client.create_token(f"bench-agents-{int(time.time())}", "worker").token
            seed_results = verify_seeds(client, base, address, worker_token)
            for seed in range(args.seeds):
                for policy in POLICIES:
                    results.append(run_one(client, base, address, worker_token, seed_results,
                                           policy, seed))
    finally:
        coordinator.stop()
    summarise(results)


if __name__ == "__main__":
    main()

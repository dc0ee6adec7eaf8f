"""What each sandbox layer costs at start-up, layer by layer, in one run.

Starts the same small target many times under cumulative layer sets, interleaved (one run
of each set per round, so load on a shared machine hits all of them alike):
none (rlimits + audit hook), + namespaces, + allowlist jail and a uid of its own,
+ seccomp, + cgroup (everything this host enforces). Two targets: ``echo`` (a bare
interpreter: the layers' own cost) and ``torch`` (imports torch first, as the checker's and
the trainer's children do). Prints the median wall time per set and its ratio to none.
Then a full ``check`` of the GPT seed with every layer against one without the OS layers
(``Limits(isolate=False)``), interleaved too.

    python bench/sandbox_layers.py [--rounds 7] [--checks 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

from genesys.lmade.checker import DEFAULT_LIMITS, check
from genesys.lmade.sandbox import NO_ISOLATION, Limits, _Run, isolation

HERE = str(Path(__file__).resolve().parent)


def layer_sets() -> dict[str, object]:
    full = isolation()
    plain = dataclasses.replace
    return {
        "none": NO_ISOLATION,
        "+namespaces": plain(full, jail=False, drop_uid=False, seccomp=False, cgroup=""),
        "+jail, own uid": plain(full, seccomp=False, cgroup=""),
        "+seccomp": plain(full, cgroup=""),
        "+cgroup (all)": full,
    }


def once(target: str, iso: object) -> float:
    run = _Run(target, {}, Limits(wall_s=120, pythonpath=(HERE,)), None, None)
    run.iso = iso
    started = time.perf_counter()
    result = run.run()
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"{target} failed under {iso.enforced}: {result.error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--checks", type=int, default=3)
    args = parser.parse_args()
    sets = layer_sets()
    if not isolation().jail:
        print(f"note: this host lacks layers: {'; '.join(isolation().missing)}")
    for target in ("sandbox_layers_targets:echo", "sandbox_layers_torch:ones"):
        times: dict[str, list[float]] = {name: [] for name in sets}
        once(target, NO_ISOLATION)  # warm the page cache
        for _ in range(args.rounds):
            for name, iso in sets.items():
                times[name].append(once(target, iso))
        base = statistics.median(times["none"])
        print(f"\n{target.split(':')[1]}: median of {args.rounds} starts")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:<16} {median * 1000:7.0f} ms   x{median / base:5.2f}")
    sys.stdout.flush()
    full_check(args.checks)


def full_check(rounds: int) -> None:
    limits = {"without OS layers": dataclasses.replace(DEFAULT_LIMITS, isolate=False),
              "all layers": DEFAULT_LIMITS}
    times: dict[str, list[float]] = {name: [] for name in limits}
    for _ in range(rounds):
        for name, lim in limits.items():
            started = time.perf_counter()
            report = check("gpt", limits=lim)
            times[name].append(time.perf_counter() - started)
            if not report.valid:
                raise SystemExit(f"the gpt seed failed under {name}: {report.to_json()}")
    base = statistics.median(times["without OS layers"])
    print(f"\nfull check of the gpt seed: median of {rounds}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<18} {median:6.2f} s   x{median / base:5.2f}")


if __name__ == "__main__":
    main()

"""Dashboard rendering: first paint and full load of the leaderboard and the lineage graph at
1k and 10k synthetic designs, against the same table as plain HTML, in headless Chromium.

    python bench/dashboard.py [--sizes 1000,10000] [--repeats 3]

The app (genesys.dashboard, served by uvicorn in this process) reads from an in-memory
stand-in for the coordinator that answers the SDK calls the pages make with synthetic
designs (parents among earlier designs, results at two rungs with stderr and curves), so
the figures are the dashboard's own cost: views, templates, transfer, the browser's layout
and scripts; not gRPC. The reference is a bare HTML table of the same rows (no CSS, no
scripts) from the same server. For each page it prints the median time to first contentful
paint and to full load (the page's scripts done: `dashboard-ready`, or `lineage-ready` when
the graph is drawn), the bytes moved (page, data and scripts not cached yet), and their
ratio to the plain table; then, for the lineage graph, the
frame intervals while it is panned and zoomed, and the time of one draw (interactive: a
draw's p95 under 50 ms, so 20+ frames/s whatever else the machine is doing).
Needs Debian's chromium + chromium-driver and selenium (dev extra).
"""

from __future__ import annotations

import argparse
import html
import os
import random
import shutil
import socket
import statistics
import threading
import time

import uvicorn
from genesys.dashboard.app import create_app
from genesys.v1 import budget_pb2, design_pb2, evolution_pb2, experiment_pb2
from starlette.responses import HTMLResponse
from starlette.routing import Route

QUADRANTS = [design_pb2.QUADRANT_GOOD_CONFIDENT, design_pb2.QUADRANT_GOOD_UNCONFIDENT,
             design_pb2.QUADRANT_POOR_CONFIDENT, design_pb2.QUADRANT_POOR_UNCONFIDENT]


def synthetic_designs(experiment: str, n: int, seed: int = 0) -> list[design_pb2.Design]:
    rng = random.Random(seed)
    out, start = [], 1_700_000_000
    for i in range(n):
        d = design_pb2.Design(id=f"d{i:06d}", experiment=experiment, name=f"design-{i}",
                              label=f"gpt+unit{i % 97}" if i >= 5 else f"seed-{i}", seed=i < 5,
                              state=design_pb2.DESIGN_STATE_VERIFIED, fitness=rng.random(),
                              fitness_stderr=rng.random() * 0.02, confidence=rng.randint(2, 7),
                              quadrant=rng.choice(QUADRANTS))
        if i >= 5:
            d.parents.extend(sorted({f"d{rng.randrange(i):06d}" for _ in range(rng.choice((1, 1, 2)))}))
        d.created_at.FromSeconds(start + 10 * i)
        for rung in ("micro", "tiny") if i % 4 == 0 else ("micro",):
            r = d.results.add(rung=rung, tokens_per_second=rng.uniform(5e3, 5e4),
                              peak_memory_bytes=rng.randint(1 << 28, 1 << 30), wall_seconds=30,
                              tokens_trained=1 << 20)
            for metric in ("bits_per_byte", "cloze", "nextsent"):
                r.metrics[metric] = rng.random()
                r.stderr[metric] = rng.random() * 0.01
            r.reported_at.FromSeconds(start + 10 * i + 5)
            r.train_curve.extend(design_pb2.CurvePoint(step=s * 10, loss=9 / (1 + s / 10))
                                 for s in range(100))
        out.append(d)
    return out


class SyntheticCoordinator:
    """The SDK calls the leaderboard and lineage pages make, answered from memory."""

    address = "synthetic"

    def __init__(self, sizes: list[int]):
        self.designs = {f"synthetic-{n}": synthetic_designs(f"synthetic-{n}", n) for n in sizes}

    def get_experiment(self, name: str) -> experiment_pb2.Experiment:
        exp = experiment_pb2.Experiment(name=name, state=experiment_pb2.EXPERIMENT_STATE_ACTIVE)
        exp.config.ladder.rungs.add(name="micro", budget=len(self.designs[name]))
        exp.config.ladder.rungs.add(name="tiny", budget=len(self.designs[name]) // 4)
        return exp

    def list_experiments(self) -> list[experiment_pb2.Experiment]:
        return [self.get_experiment(name) for name in self.designs]

    def list_designs(self, experiment: str, limit: int = 100, offset: int = 0, full: bool = False,
                     **_) -> list[design_pb2.Design]:
        return self.designs[experiment][offset:offset + limit]

    def leaderboard(self, experiment: str, rung: str = "", limit: int = 20):
        ranked = sorted(self.designs[experiment], key=lambda d: (-d.fitness, -d.confidence, d.id))
        return [evolution_pb2.LeaderboardEntry(rank=i + 1, design_id=d.id, name=d.name,
                                               fitness=d.fitness, confidence=d.confidence,
                                               quadrant=d.quadrant, score=d.fitness)
                for i, d in enumerate(ranked[:limit])]

    def get_budget(self, experiment: str, entries: int = 0) -> budget_pb2.GetBudgetResponse:
        return budget_pb2.GetBudgetResponse()

    def list_workers(self, include_dead: bool = False) -> list:
        return []

    def watch(self, after_seq=None, timeout=None, **_):
        time.sleep(timeout or 30)
        return iter(())


def plain_table(client: SyntheticCoordinator, experiment: str) -> str:
    """The leaderboard's rows as a bare HTML table (the reference)."""
    designs = {d.id: d for d in client.designs[experiment]}
    metrics = ("bits_per_byte", "cloze", "nextsent")
    rows = []
    for e in client.leaderboard(experiment, limit=len(designs)):
        d = designs[e.design_id]
        r = d.results[-1]
        cells = [str(e.rank), f'<a href="/d/{d.id}">{html.escape(d.label)}</a>',
                 f"{d.fitness:.4f} ± {d.fitness_stderr:.4f}", str(d.confidence),
                 design_pb2.Quadrant.Name(d.quadrant).lower(),
                 *(f"{r.metrics[m]:.4f} ± {r.stderr[m]:.4f}" for m in metrics)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("#", "design", "fitness", "confidence", "quadrant", *metrics))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{experiment}</title></head>"
            f"<body><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</body></html>")


def serve(client: SyntheticCoordinator) -> tuple[uvicorn.Server, str]:
    app = create_app(client, admin_client=lambda token: None)
    app.router.routes.append(Route("/plain/{name}", lambda r: HTMLResponse(
        plain_table(client, r.path_params["name"]))))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(300)
    driver.set_script_timeout(300)
    return driver


TIMES = """
const done = arguments[arguments.length - 1], mark = arguments[0];
const read = () => {
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const ready = mark ? performance.getEntriesByName(mark)[0] : null;
  if (!paint || nav.loadEventEnd === 0 || (mark && !ready)) return setTimeout(read, 20);
  done({fcp: paint.startTime, load: ready ? ready.startTime : nav.loadEventEnd,
        ttfb: nav.responseStart,
        bytes: performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, nav.transferSize)});
};
read();
"""


def measure(driver, url: str, mark: str, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        driver.get("about:blank")
        driver.get(url)
        runs.append(driver.execute_async_script(TIMES, mark))
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


PAN = """
const done = arguments[arguments.length - 1], g = genesys.graph(), frames = [];
let last = performance.now(), i = 0;
function step(now) {
  frames.push(now - last); last = now;
  if (i < 60) g.selection.call(g.zoom.translateBy, 7, 3);
  else g.selection.call(g.zoom.scaleBy, i < 90 ? 1.06 : 0.94, [500, 400]);
  if (++i < 120) requestAnimationFrame(step); else done([frames.slice(1), g.drawMs.slice(-119)]);
}
requestAnimationFrame(step);
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    client = SyntheticCoordinator(sizes)
    server, url = serve(client)
    driver = browser()
    print(f"{'page':<26} {'designs':>7} {'first paint ms':>15} {'full load ms':>13} "
          f"{'KiB moved':>9} {'paint x plain':>13} {'load x plain':>12}")
    try:
        for n in sizes:
            exp = f"synthetic-{n}"
            plain = measure(driver, f"{url}/plain/{exp}", "", args.repeats)
            pages = {"plain HTML table": plain,
                     "dashboard leaderboard": measure(driver, f"{url}/e/{exp}/leaderboard",
                                                      "dashboard-ready", args.repeats),
                     "dashboard lineage graph": measure(driver, f"{url}/e/{exp}/lineage",
                                                        "lineage-ready", args.repeats)}
            for name, t in pages.items():
                print(f"{name:<26} {n:>7} {t['fcp']:>15.0f} {t['load']:>13.0f} {t['bytes'] / 1024:>9.0f} "
                      f"{t['fcp'] / plain['fcp']:>13.2f} {t['load'] / plain['load']:>12.2f}")
            frames, draws = (sorted(x) for x in driver.execute_async_script(PAN))
            p95, draw_p95 = frames[int(0.95 * (len(frames) - 1))], draws[int(0.95 * (len(draws) - 1))]
            print(f"lineage graph pan/zoom at {n} designs: frame interval median "
                  f"{statistics.median(frames):.0f} ms, p95 {p95:.0f} ms; one draw median "
                  f"{statistics.median(draws):.1f} ms, p95 {draw_p95:.1f} ms -> "
                  f"{'interactive' if draw_p95 < 50 else 'NOT interactive'} "
                  f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()

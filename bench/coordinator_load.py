"""Coordinator load: simulated workers lease and complete trivial jobs against the real
server (subprocess, SQLite store) for a fixed time.

Prints lease+complete cycles/s, p50/p99 latency of leases that got a job, and duplicate
completions (must be 0) for N active workers: saturated with eager dispatch
(CompleteJob(lease_next) hands over the next job: one RPC per cycle), saturated with
LeaseJob + CompleteJob (no work between them: the throughput ceiling, where latency is
pure queueing, N / throughput), then paced (each job "runs" --work-ms, the realistic
case), then paced with 1000 more idle workers heartbeating every
5 s. In the same run: the raw unary RPC/s of a trivial gRPC echo server driven by the same
client (ratio = coordinator RPC/s / echo RPC/s), and the server CPU per RPC of both processes
(a ratio that machine load barely moves).

    python bench/coordinator_load.py [--workers 200] [--idle 1000] [--seconds 10] [--work-ms 300]

With `--trees 100,10000,100000`: the large-tree run instead. For each size, an experiment
holding that many designs (a fifth verified at the lowest rung, VERIFY budget left for
all) beside two small experiments; N verify workers lease and complete VERIFY jobs
(paced by --work-ms, with scores, so every result is rescored) while 4 submitters submit
new designs; prints lease and submit latency p50 / p99 per size, and p99 as a ratio of
the smallest size's (same run, same machine load).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from genesys.v1 import (
    design_pb2,
    evolution_pb2,
    evolution_pb2_grpc,
    experiment_pb2,
    job_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

ECHO_SERVER = """
import asyncio, grpc
async def echo(request, context):
    return request
async def main():
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"ready address=127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""


def spawn(args: list[str], env: dict | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})
    for line in proc.stdout:
        if "ready address=" in line:
            return proc, line.strip().rsplit("=", 1)[1]
    raise RuntimeError(f"{args[:3]} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def echo_rate(address: str, callers: int, seconds: float, pid: int) -> tuple[float, float]:
    """RPC/s of the echo server, and its CPU ms per RPC."""
    cpu_before = cpu_seconds(pid)
    channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
    calls = [c.unary_unary("/bench.Echo/Echo") for c in channels]
    payload = b"x" * 64
    done = 0
    stop = time.monotonic() + seconds

    async def caller(i: int) -> None:
        nonlocal done
        call = calls[i % len(calls)]
        while time.monotonic() < stop:
            await call(payload)
            done += 1

    await asyncio.gather(*(caller(i) for i in range(callers)))
    for c in channels:
        await c.close()
    return done / seconds, 1000 * (cpu_seconds(pid) - cpu_before) / max(1, done)


class Load:
    def __init__(self, address: str, token: str, server_pid: int):
        self.server_pid = server_pid
        self.meta = (("authorization", f"Bearer {token}"),)
        self.channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
        self.stubs = [scheduler_pb2_grpc.SchedulerServiceStub(c) for c in self.channels]

    def stub(self, i: int) -> scheduler_pb2_grpc.SchedulerServiceStub:
        return self.stubs[i % len(self.stubs)]

    async def register(self, count: int, roles: list[int]) -> list[str]:
        caps = job_pb2.WorkerCapabilities(roles=roles)
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> str:
            async with sem:
                reply = await self.stub(i).RegisterWorker(
                    scheduler_pb2.RegisterWorkerRequest(name=f"bench-{i}", capabilities=caps),
                    metadata=self.meta, timeout=60)
                return reply.worker.id

        return await asyncio.gather(*(one(i) for i in range(count)))

    async def cycles(self, workers: list[str], seconds: float, work: float = 0.0,
                     eager: bool = False, scores: bool = False) -> dict:
        cpu_before = cpu_seconds(self.server_pid)
        latencies: list[float] = []
        completed: dict[str, int] = {}
        rpcs = 0
        stop = time.monotonic() + seconds

        async def worker(i: int, worker_id: str) -> None:
            nonlocal rpcs
            stub, job, lease = self.stub(i), None, None
            while time.monotonic() < stop:
                if job is None:
                    t0 = time.perf_counter()
                    reply = await stub.LeaseJob(scheduler_pb2.LeaseJobRequest(
                        worker_id=worker_id, wait_seconds=1.0), metadata=self.meta, timeout=30)
                    rpcs += 1
                    if not reply.HasField("job"):
                        continue  # an empty long poll: its wait is not a lease latency
                    latencies.append(time.perf_counter() - t0)
                    job, lease = reply.job, reply.lease
                if work:
                    await asyncio.sleep(work)
                t0 = time.perf_counter()
                result = job_pb2.JobResult(metrics={"piqa": random.random()} if scores else {})
                done = await stub.CompleteJob(scheduler_pb2.CompleteJobRequest(
                    job_id=job.id, fencing_token=lease.fencing_token, worker_id=worker_id,
                    lease_next=eager, result=result), metadata=self.meta, timeout=30)
                rpcs += 1
                if not done.already_completed:
                    completed[job.id] = completed.get(job.id, 0) + 1
                job = lease = None
                if done.HasField("next_job"):  # the completion also leased the next job
                    latencies.append(time.perf_counter() - t0)
                    job, lease = done.next_job, done.next_lease

        start = time.monotonic()
        await asyncio.gather(*(worker(i, w) for i, w in enumerate(workers)))
        elapsed = time.monotonic() - start
        cycles = sum(completed.values())
        return {"cycles_per_s": cycles / elapsed, "rpc_per_s": rpcs / elapsed,
                "server_cpu_per_rpc": 1000 * (cpu_seconds(self.server_pid) - cpu_before) / max(1, rpcs),
                "server_cpu_ms": 1000 * (cpu_seconds(self.server_pid) - cpu_before) / max(1, cycles),
                "p50_ms": 1000 * percentile(latencies, 0.5),
                "p99_ms": 1000 * percentile(latencies, 0.99),
                "duplicates": sum(n - 1 for n in completed.values() if n > 1),
                "cycles": cycles}

    async def heartbeats(self, workers: list[str], period: float, stop: asyncio.Event) -> int:
        sent = 0

        async def beat(i: int, worker_id: str) -> None:
            nonlocal sent
            await asyncio.sleep(random.random() * period)
            while not stop.is_set():
                await self.stub(i).Heartbeat(scheduler_pb2.HeartbeatRequest(worker_id=worker_id),
                                             metadata=self.meta, timeout=30)
                sent += 1
                try:
                    await asyncio.wait_for(stop.wait(), period)
                except TimeoutError:
                    pass

        await asyncio.gather(*(beat(i, w) for i, w in enumerate(workers)))
        return sent

    async def close(self) -> None:
        for c in self.channels:
            await c.close()


async def run(args: argparse.Namespace, address: str, token: str, echo: str, pid: int,
              echo_pid: int) -> None:
    from genesys.client import Coordinator

    with Coordinator(address, token) as admin:
        cfg = experiment_pb2.ExperimentConfig()
        cfg.design_mix.max_open_design_jobs = 100_000
        admin.create_experiment("load", cfg, ladder="micro:1", seeds=["gpt"])
        worker_token = admin.create_token("bench", "worker").token
    load = Load(address, worker_token, pid)
    active = await load.register(args.workers, [job_pb2.WORKER_ROLE_DESIGN])
    idle = await load.register(args.idle, [job_pb2.WORKER_ROLE_VERIFY])
    print(f"registered {len(active)} active + {len(idle)} idle workers")

    echo_rps, echo_cpu = await echo_rate(echo, args.workers, args.seconds / 2, echo_pid)
    print(f"echo baseline: {echo_rps:,.0f} RPC/s ({args.workers} concurrent callers), "
          f"server CPU {echo_cpu:.3f} ms/RPC")

    work = args.work_ms / 1000
    eager = await load.cycles(active, args.seconds, eager=True)
    saturated = await load.cycles(active, args.seconds)
    paced = await load.cycles(active, args.seconds, work)
    stop = asyncio.Event()
    beating = asyncio.create_task(load.heartbeats(idle, 5.0, stop))
    await asyncio.sleep(5.0)  # every idle worker has started beating
    loaded = await load.cycles(active, args.seconds, work)
    stop.set()
    beats = await beating
    await load.close()

    for label, r in ((f"{args.workers} workers, saturated, eager (CompleteJob leases the next)",
                      eager),
                     (f"{args.workers} workers, saturated", saturated),
                     (f"{args.workers} workers, {args.work_ms} ms jobs", paced),
                     (f"{args.workers} workers, {args.work_ms} ms jobs + {args.idle} idle "
                      "heartbeating", loaded)):
        ratio = r["rpc_per_s"] / echo_rps
        print(f"{label}: {r['cycles_per_s']:,.0f} lease+complete cycles/s, lease latency "
              f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms, duplicate completions "
              f"{r['duplicates']}, RPC/s ratio vs echo {ratio:.2f}, server CPU "
              f"{r['server_cpu_ms']:.2f} ms/cycle (echo CPU per RPC / coordinator CPU per RPC "
              f"{echo_cpu / r['server_cpu_per_rpc']:.2f})")
    print(f"heartbeats sent: {beats}; p99 change with idle workers: "
          f"{loaded['p99_ms'] / paced['p99_ms']:.2f}x")


SERVER = [sys.executable, "-c", "from genesys.cli import main; main()", "server", "start",
          "--listen", "127.0.0.1:0", "--log-level", "WARNING", "--data-dir"]


def fill_tree(data_dir: str, size: int) -> None:
    """`size` designs in experiment "tree" (every fifth verified at micro), written to the
    store directly: submitting them one by one would take longer than the benchmark."""
    from genesys.server.store import open_store

    store = open_store("", Path(data_dir))
    rng = random.Random(size)
    for i in range(size):
        design = design_pb2.Design(id=f"t{i:07d}", experiment="tree", name=f"bench-{i}",
                                   digest=f"bench{i:060d}", state=design_pb2.DESIGN_STATE_IMPLEMENTED)
        store.insert_design(design)
        if i % 5 == 0:
            design.state = design_pb2.DESIGN_STATE_VERIFIED
            design.results.add(rung="micro", metrics={"piqa": rng.random(),
                                                      "hellaswag": rng.random()})
            store.record_result(design, "micro", 10 * size)
    store.close()


async def submitter(address: str, token: str, source: str, tag: str, stop: float,
                    latencies: list[float]) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = evolution_pb2_grpc.EvolutionServiceStub(channel)
        meta = (("authorization", f"Bearer {token}"),)
        i = 0
        while time.monotonic() < stop:
            i += 1
            variant = source.replace("CONFIG = {", f"CONFIG = {{'bench': '{tag}-{i}', ", 1)
            t0 = time.perf_counter()
            await stub.SubmitDesign(evolution_pb2.SubmitDesignRequest(
                experiment="tree", source=variant), metadata=meta, timeout=60)
            latencies.append(time.perf_counter() - t0)


async def tree_load(args: argparse.Namespace, address: str, token: str, pid: int) -> dict:
    from genesys.client import Coordinator

    with Coordinator(address, token) as admin:
        worker_token = admin.create_token("bench", "worker").token
        source = admin.get_design(admin.list_designs("side-a")[0].id).source
    load = Load(address, worker_token, pid)
    workers = await load.register(args.workers, [job_pb2.WORKER_ROLE_VERIFY])
    submits: list[float] = []
    stop = time.monotonic() + args.seconds
    submitting = [asyncio.create_task(submitter(address, token, source, f"s{k}", stop, submits))
                  for k in range(4)]
    leases = await load.cycles(workers, args.seconds, args.work_ms / 1000, scores=True)
    await asyncio.gather(*submitting)
    await load.close()
    return {**leases, "submit_p50_ms": 1000 * percentile(submits, 0.5),
            "submit_p99_ms": 1000 * percentile(submits, 0.99), "submits": len(submits)}


def tree_run(args: argparse.Namespace, size: int) -> dict:
    from genesys.client import Coordinator

    with tempfile.TemporaryDirectory() as data_dir:
        server, address = spawn([*SERVER, data_dir])
        token = (Path(data_dir) / "token").read_text().strip()
        with Coordinator(address, token) as admin:
            cfg = experiment_pb2.ExperimentConfig()
            cfg.ladder.rungs.add(name="micro", budget=10 * size)
            admin.create_experiment("tree", cfg, seeds=["gpt"])
            for side in ("side-a", "side-b"):
                admin.create_experiment(side, ladder="micro:100", seeds=["gpt", "retnet"])
        server.terminate()
        server.wait(30)
        filled = time.monotonic()
        fill_tree(data_dir, size)
        filled = time.monotonic() - filled
        started = time.monotonic()
        server, address = spawn([*SERVER, data_dir])  # loads the tree, rescores it
        started = time.monotonic() - started
        try:
            out = asyncio.run(tree_load(args, address, token, server.pid))
        finally:
            server.terminate()
            server.wait(30)
    return {**out, "fill_s": filled, "start_s": started}


def trees(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.trees.split(",")]
    rows = [(size, tree_run(args, size)) for size in sizes]
    base = rows[0][1]
    for size, r in rows:
        print(f"tree of {size:,} designs (+2 small experiments), {args.workers} verify workers, "
              f"{args.work_ms} ms jobs, 4 submitters: lease p50 {r['p50_ms']:.1f} ms p99 "
              f"{r['p99_ms']:.1f} ms (p99 x{r['p99_ms'] / base['p99_ms']:.2f} of "
              f"{sizes[0]:,}), submit p50 {r['submit_p50_ms']:.1f} ms p99 "
              f"{r['submit_p99_ms']:.1f} ms (p99 x{r['submit_p99_ms'] / base['submit_p99_ms']:.2f}),"
              f" {r['cycles_per_s']:,.0f} cycles/s, server CPU {r['server_cpu_ms']:.1f} ms/cycle, "
              f"{r['submits']} submits, duplicate completions "
              f"{r['duplicates']}, server start {r['start_s']:.1f} s (fill {r['fill_s']:.0f} s)")
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--work-ms", type=int, default=300, help="simulated job duration")
    parser.add_argument("--trees", default="", help="large-tree run: sizes, e.g. 100,10000,100000")
    args = parser.parse_args()
    if args.trees:
        trees(args)
        return 0
    with tempfile.TemporaryDirectory() as data_dir:
        server, address = spawn([sys.executable, "-c", "from genesys.cli import main; main()",
                                 "server", "start", "--listen", "127.0.0.1:0", "--data-dir",
                                 data_dir, "--log-level", "WARNING"])
        echo, echo_address = spawn([sys.executable, "-c", ECHO_SERVER])
        try:
            token = (Path(data_dir) / "token").read_text().strip()
            asyncio.run(run(args, address, token, echo_address, server.pid, echo.pid))
            print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        finally:
            for proc in (server, echo):
                proc.terminate()
                proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

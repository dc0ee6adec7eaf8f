"""The coordinator process: store, services, health + reflection, background reaper, TLS,
graceful shutdown. Run it with `genesys server start`, or in-process with
`start_in_thread(config)` (tests, demos).

When serving, it prints one line ``genesys-coordinator ready address=HOST:PORT`` and writes
the bound address to ``<data_dir>/address`` (use ``--listen 127.0.0.1:0`` for a free port).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from genesys.v1 import (
    auth_pb2,
    budget_pb2,
    evolution_pb2,
    scheduler_pb2,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .auth import Authenticator, ensure_local_token
from .config import ServerConfig
from .events import FLUSH_SECONDS, EventHub, WorkSignal
from .evolution import Evolution
from .reflection import enable_reflection
from .rpc import AuthServicer, BudgetServicer, EvolutionServicer, SchedulerServicer, add_service
from .scheduler import Scheduler
from .seeds import default_seeds_dir
from .store import Store, open_store
from .tree_index import IndexedStore

log = logging.getLogger("genesys.server")
SERVICE_DESCRIPTORS = [
    evolution_pb2.DESCRIPTOR.services_by_name["EvolutionService"],
    scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"],
    budget_pb2.DESCRIPTOR.services_by_name["BudgetService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
]
SERVICES = [d.full_name for d in SERVICE_DESCRIPTORS]
RESCORE_SECONDS = 0.5


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    tls = config.tls
    if not tls.cert:
        return None
    if not tls.key:
        raise ValueError("config key 'tls.key': required when tls.cert is set")
    pair = [(Path(tls.key).read_bytes(), Path(tls.cert).read_bytes())]
    if tls.client_ca:
        return grpc.ssl_server_credentials(pair, Path(tls.client_ca).read_bytes(),
                                           require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


class Coordinator:
    """One coordinator: call `await start()`, then `await serve_until(stop_event)`."""

    def __init__(self, config: ServerConfig, store: Store | None = None):
        self.config = config
        self.data_dir = config.data_path
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = IndexedStore(store or open_store(config.store.url, self.data_dir,
                                                     config.store.sqlite_sync))
        self.auth = Authenticator(self.store)
        self.token_file = ensure_local_token(self.auth, self.store, self.data_dir)
        seeds_dir = Path(config.seeds_dir) if config.seeds_dir else default_seeds_dir()
        self.hub = EventHub(self.store)
        self.work = WorkSignal()
        self.evolution = Evolution(self.store, self.hub, self.work, config, seeds_dir)
        self.scheduler = Scheduler(self.store, self.hub, self.work, self.evolution, config)
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._reaper: asyncio.Task | None = None
        self._flusher: asyncio.Task | None = None
        self._rescorer: asyncio.Task | None = None

    async def start(self) -> str:
        limit = self.config.limits.max_message_bytes
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
        ])
        threads = self.store.max_threads or self.config.threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="genesys-rpc")
        parts = (self.auth, self.evolution, self.scheduler, self._pool)
        servicers = [EvolutionServicer(*parts),
                     SchedulerServicer(*parts, max_wait=self.config.scheduler.max_wait_seconds),
                     BudgetServicer(*parts), AuthServicer(*parts)]
        for servicer, descriptor in zip(servicers, SERVICE_DESCRIPTORS, strict=True):
            add_service(server, servicer, descriptor)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        enable_reflection(server, SERVICES + [health.SERVICE_NAME])
        creds = _credentials(self.config)
        host = self.config.listen.rpartition(":")[0]
        port = (server.add_secure_port(self.config.listen, creds) if creds
                else server.add_insecure_port(self.config.listen))
        if not port:
            raise OSError(f"cannot listen on {self.config.listen}")
        self.scheduler.reconcile(grace_seconds=0)  # nothing is in flight before serving
        self.evolution.rescore_all()
        self.scheduler.resume_leases()
        await server.start()
        for name in ["", *SERVICES]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        self.address = f"{host}:{port}"
        (self.data_dir / "address").write_text(self.address + "\n")
        self._reaper = asyncio.create_task(self._reap_forever())
        self._rescorer = asyncio.create_task(self._rescore_forever())
        self._flusher = asyncio.create_task(self._flush_forever())
        log.info("event=started address=%s store=%s data_dir=%s tls=%s", self.address,
                 type(self.store).__name__, self.data_dir, bool(creds))
        return self.address

    async def _reap_forever(self) -> None:
        loop, pruned = asyncio.get_running_loop(), 0.0
        retention = self.config.retention
        while True:
            await asyncio.sleep(self.config.scheduler.reap_interval_seconds)
            try:
                await loop.run_in_executor(self._pool, self.scheduler.reap)
                if loop.time() - pruned >= retention.prune_interval_seconds:
                    pruned = loop.time()
                    await loop.run_in_executor(self._pool, self._prune)
            except Exception:
                log.exception("event=reap_failed")

    def _prune(self) -> None:
        retention = self.config.retention
        events = self.store.prune_events(retention.events)
        workers = self.scheduler.forget_workers(retention.dead_workers_seconds)
        self.scheduler.reconcile(self.config.scheduler.reconcile_grace_seconds)
        if events or workers:
            log.info("event=pruned events=%d workers=%d", events, workers)

    async def _rescore_forever(self) -> None:
        """Large trees are rescored here, at most ~10% of the time (a rescore that took t
        seconds waits 9t before the next): rescoring is pure Python and holds the GIL."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await loop.run_in_executor(self._pool, self.evolution.rescore_pending)
            except Exception:
                log.exception("event=rescore_failed")
            await asyncio.sleep(max(RESCORE_SECONDS, 9 * (loop.time() - started)))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await asyncio.get_running_loop().run_in_executor(self._pool, self.hub.flush)
            except Exception:
                log.exception("event=flush_failed")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let in-flight calls finish (up to `grace` s), close the store."""
        if self._server is None:
            return
        await self.health.enter_graceful_shutdown()
        self._reaper.cancel()
        self._rescorer.cancel()
        self._flusher.cancel()
        await self._server.stop(grace)
        self._server = None
        self._pool.shutdown(wait=True)
        self.hub.flush()
        self.store.close()
        log.info("event=stopped address=%s", self.address)


async def serve(config: ServerConfig, ready=print) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    coordinator = Coordinator(config)
    address = await coordinator.start()
    if coordinator.token_file:
        ready(f"genesys-coordinator local admin token written to {coordinator.token_file}")
    ready(f"genesys-coordinator ready address={address}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await coordinator.stop()


@dataclass
class RunningCoordinator:
    """A coordinator serving on a background thread (see start_in_thread)."""

    coordinator: Coordinator
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def address(self) -> str:
        return self.coordinator.address

    @property
    def token(self) -> str:
        return (self.coordinator.data_dir / "token").read_text().strip()

    def stop(self, grace: float = 1.0) -> None:
        asyncio.run_coroutine_threadsafe(self.coordinator.stop(grace), self.loop).result(grace + 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_in_thread(config: ServerConfig) -> RunningCoordinator:
    """Start a coordinator on its own event-loop thread and return once it serves."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                box["c"] = Coordinator(config)
                await box["c"].start()
            except BaseException as e:  # reported to the caller below
                box["error"] = e
            finally:
                started.set()

        loop.run_until_complete(boot())
        if "error" not in box:
            loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="genesys-coordinator", daemon=True)
    thread.start()
    started.wait(60)
    if "error" in box:
        raise box["error"]
    return RunningCoordinator(box["c"], loop, thread)

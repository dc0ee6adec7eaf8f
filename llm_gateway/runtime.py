"""The gateway's moving parts: model pools, supervised vLLM processes, the health loop."""

from __future__ import annotations

import asyncio
import logging

import httpx
from genesys.llm_gateway import upstream
from genesys.llm_gateway.accounting import Metrics, UsageLedger
from genesys.llm_gateway.config import GatewayConfig
from genesys.llm_gateway.launcher import VllmProcess, check_vllm
from genesys.llm_gateway.pool import ModelPool, Replica, State

log = logging.getLogger("genesys.llm_gateway")


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.ledger = UsageLedger(self.metrics)
        self.pools: dict[str, ModelPool] = {}
        self.processes: list[VllmProcess] = []
        # vLLM has no use for HTTP/1.1 keep-alive limits this low; allow every slot a connection.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
        self.http = httpx.AsyncClient(limits=limits, timeout=config.request_timeout_s)
        self._tasks: list[asyncio.Task] = []
        data_dir = config.data_path
        for name, model in config.models.items():
            pool = ModelPool(name=name, config=model, metrics=self.metrics)
            if model.launch is not None:
                where = f"models.{name}.launch"
                for index in range(model.launch.replicas):
                    process = VllmProcess(name, model, index, data_dir)
                    if index == 0:
                        check_vllm(process.python, where, process.environment())
                    self.processes.append(process)
                    pool.replicas.append(process.replica)
            else:
                pool.replicas.extend(Replica(model=name, url=url.rstrip("/")) for url in model.endpoints)
            self.pools[name] = pool

    def roles_of(self, model: str) -> list[str]:
        return sorted(role for role, name in self.config.roles.items() if name == model)

    async def start(self) -> None:
        """Start vLLM processes and the health loop; returns after one health round."""
        for process in self.processes:
            self._tasks.append(asyncio.create_task(process.supervise(), name=f"vllm-{process.name}"))
        await self.check_health()
        self._tasks.append(asyncio.create_task(self._health_loop(), name="health"))

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_interval_s)
            try:
                await self.check_health()
            except Exception:  # a bug here must not stop health checking for good
                log.exception("event=health_round_failed")

    async def check_health(self) -> None:
        checks = [
            self._check_replica(pool.config.health_path, replica)
            for pool in self.pools.values() for replica in pool.replicas
            if replica.state is not State.STOPPED
        ]
        await asyncio.gather(*checks)

    async def _check_replica(self, path: str, replica: Replica) -> None:
        ok, error = await upstream.healthy(self.http, replica.url, path)
        if replica.state is State.STOPPED:  # the process exited while we were checking
            return
        if ok:
            replica.set_state(State.HEALTHY)
        elif not (replica.launched and replica.state is State.STARTING):
            replica.set_state(State.UNHEALTHY, error)
        self.metrics.replica_healthy.labels(replica.model, replica.url).set(
            int(replica.state is State.HEALTHY))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*(p.stop() for p in self.processes), return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.aclose()

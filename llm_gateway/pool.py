"""Replicas of one model: admission (concurrency limit + bounded queue), least-outstanding
routing over healthy replicas, and retries with backoff on another replica."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from genesys.llm_gateway.accounting import Metrics
from genesys.llm_gateway.config import GatewayConfig, ModelConfig
from genesys.llm_gateway.upstream import RetryableError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger("genesys.llm_gateway")
T = TypeVar("T")
STARTING_POLL_S = 0.25


class State(enum.Enum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    STOPPED = "stopped"


@dataclass
class Replica:
    model: str
    url: str
    launched: bool = False
    state: State = State.STARTING
    outstanding: int = 0
    last_error: str = ""

    def set_state(self, state: State, error: str = "") -> None:
        if state != self.state:
            log.info("event=replica_state model=%s url=%s state=%s error=%r",
                     self.model, self.url, state.value, error)
        self.state = state
        if error:
            self.last_error = error


class QueueFull(Exception):
    pass


class NoReplica(Exception):
    pass


class DeadlineExceeded(Exception):
    pass


@dataclass
class ModelPool:
    name: str
    config: ModelConfig
    metrics: Metrics
    replicas: list[Replica] = field(default_factory=list)
    in_flight: int = 0
    queued: int = 0

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.config.max_concurrency)

    @property
    def served_name(self) -> str:
        return self.config.served_name or self.name

    @contextlib.asynccontextmanager
    async def admitted(self, deadline: float) -> AsyncIterator[None]:
        """Hold one of the model's concurrency slots; wait in the bounded queue for one."""
        if self._slots.locked():
            if self.queued >= self.config.queue_size:
                raise QueueFull(
                    f"model {self.name}: {self.in_flight} requests running and "
                    f"{self.queued} queued (queue_size {self.config.queue_size}); retry later"
                )
            self.queued += 1
            self.metrics.queued.labels(self.name).set(self.queued)
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError as exc:
                raise DeadlineExceeded(f"model {self.name}: deadline passed while queued") from exc
            finally:
                self.queued -= 1
                self.metrics.queued.labels(self.name).set(self.queued)
        else:
            await self._slots.acquire()
        self.in_flight += 1
        self.metrics.in_flight.labels(self.name).set(self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.labels(self.name).set(self.in_flight)
            self._slots.release()

    def pick(self, tried: set[str]) -> Replica | None:
        healthy = [r for r in self.replicas if r.state is State.HEALTHY]
        fresh = [r for r in healthy if r.url not in tried] or healthy
        return min(fresh, key=lambda r: r.outstanding, default=None)

    async def _pick_waiting(self, tried: set[str], deadline: float) -> Replica:
        """A healthy replica; while some are still starting, wait for them until the deadline."""
        while True:
            replica = self.pick(tried)
            if replica is not None:
                return replica
            states = sorted({r.state.value for r in self.replicas})
            if State.STARTING.value not in states or time.monotonic() >= deadline:
                raise NoReplica(f"model {self.name}: no healthy replica (replicas: {', '.join(states)})")
            await asyncio.sleep(STARTING_POLL_S)

    async def call(
        self, gateway: GatewayConfig, deadline: float, fn: Callable[[Replica, float], Awaitable[T]]
    ) -> T:
        """Run fn(replica, timeout_s) on the least-loaded healthy replica, retrying
        replica failures on another one with exponential backoff until attempts or time run out."""
        tried: set[str] = set()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(gateway.retry_attempts) | (lambda _: time.monotonic() >= deadline),
            wait=wait_exponential(multiplier=gateway.retry_backoff_s, max=2.0),
            retry=retry_if_exception_type(RetryableError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                replica = await self._pick_waiting(tried, deadline)
                tried.add(replica.url)
                replica.outstanding += 1
                try:
                    return await fn(replica, max(0.01, deadline - time.monotonic()))
                except RetryableError as exc:
                    log.warning("event=replica_failed model=%s url=%s attempt=%d error=%r",
                                self.name, replica.url, attempt.retry_state.attempt_number, str(exc))
                    if exc.dead:
                        replica.set_state(State.UNHEALTHY, str(exc))
                    raise
                finally:
                    replica.outstanding -= 1
        raise AssertionError("unreachable: tenacity reraises the last error")

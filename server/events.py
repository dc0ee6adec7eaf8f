"""Experiment events (pushed to live Watch streams at once, stored in batches) and the
wake-up signal that long-polling LeaseJob calls wait on.

Events are a log for watchers, not the source of truth (designs, results, jobs and the
ledger are): they are written to the store by `flush()`, which the coordinator calls every
`FLUSH_SECONDS`, when `FLUSH_BATCH` are pending, before a replay and on shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque

from genesys.v1 import design_pb2

from .store import Store

log = logging.getLogger("genesys.server")
QUEUE_LIMIT = 10_000
FLUSH_SECONDS = 0.1
FLUSH_BATCH = 256


class Overflow(Exception):
    """A watcher fell too far behind; it may resume from the last seq it saw."""


class EventHub:
    def __init__(self, store: Store):
        self._store = store
        self._watchers: set[Watcher] = set()
        self._lock = threading.Lock()
        self._seq = store.last_event_seq()
        self._pending: list[design_pb2.Event] = []

    def publish(self, kind: int, experiment: str, *, design_id: str = "", job_id: str = "",
                worker_id: str = "", message: str = "", data: dict | None = None) -> design_pb2.Event:
        event = design_pb2.Event(kind=kind, experiment=experiment, design_id=design_id,
                                 job_id=job_id, worker_id=worker_id, message=message,
                                 data_json=json.dumps(data) if data else "")
        event.time.FromNanoseconds(time.time_ns())
        with self._lock:
            self._seq += 1
            event.seq = self._seq
            self._pending.append(event)
            watchers = list(self._watchers)
            full = len(self._pending) >= FLUSH_BATCH
        if full:
            self.flush()
        for w in watchers:
            w.offer(event)
        log.info("event=%s experiment=%s design=%s job=%s worker=%s %s",
                 design_pb2.EventKind.Name(kind).removeprefix("EVENT_KIND_").lower(),
                 experiment, design_id or "-", job_id or "-", worker_id or "-", message)
        return event

    def flush(self) -> None:
        """Write pending events to the store."""
        with self._lock:
            pending, self._pending = self._pending, []
            if pending:
                self._store.append_events(pending)

    def watch(self, experiment: str, kinds: set[int]) -> Watcher:
        watcher = Watcher(experiment, kinds, self)
        with self._lock:
            self._watchers.add(watcher)
        return watcher

    def drop(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)


class Watcher:
    def __init__(self, experiment: str, kinds: set[int], hub: EventHub):
        self.experiment, self.kinds, self._hub = experiment, kinds, hub
        self._loop = asyncio.get_running_loop()
        self._queue: deque[design_pb2.Event] = deque()
        self._ready = asyncio.Event()
        self.overflow = False

    def wants(self, event: design_pb2.Event) -> bool:
        return ((not self.experiment or event.experiment == self.experiment)
                and (not self.kinds or event.kind in self.kinds))

    def offer(self, event: design_pb2.Event) -> None:
        if not self.wants(event):
            return
        if len(self._queue) >= QUEUE_LIMIT:
            self.overflow = True
        else:
            self._queue.append(event)
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._ready.set)

    async def next(self) -> design_pb2.Event:
        while not self._queue:
            if self.overflow:
                raise Overflow
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def close(self) -> None:
        self._hub.drop(self)


class WorkSignal:
    """Wakes long-polling lease calls when work may have appeared. Every change that can
    make work leasable notifies all waiters (each may match different work); waiters also
    re-check every `scheduler.recheck_seconds` as a safety net."""

    def __init__(self):
        self._waiters: set[asyncio.Future] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def wait(self, timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        fut = self._loop.create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)

    def notify(self) -> None:
        """Wake every waiter. Safe from any thread."""
        if self._loop is None:
            return
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._wake()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

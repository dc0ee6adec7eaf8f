"""The coordinator's Watch stream, shared by every open page: one thread reads it (after a
break it reconnects and replays from the last event it saw) and hands each event to the
asyncio queues of the browsers subscribed to its experiment. It also keeps the latest
progress of each running job and the last few events, so a page opened later shows them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from genesys.cli.coordinator_opts import enum_name
from genesys.client.coordinator import Coordinator, CoordinatorError
from genesys.v1 import design_pb2

QUEUE_SIZE = 1000
RECENT = 40
FINISHED = {"job_completed", "job_failed", "job_cancelled", "job_requeued"}
# Which part of a page an event changes (the SSE event name pages listen to).
GROUPS = {"job_progress": "progress", "design_submitted": "designs", "result_reported": "designs",
          "budget_changed": "budget", "experiment_created": "experiment",
          "experiment_updated": "experiment", "worker_registered": "workers",
          "worker_dead": "workers"}


def event_dict(event: design_pb2.Event) -> dict[str, Any]:
    try:
        data = json.loads(event.data_json) if event.data_json else {}
    except json.JSONDecodeError:
        data = {"raw": event.data_json}
    kind = enum_name(design_pb2.EventKind, event.kind, "EVENT_KIND_")
    return {"seq": event.seq, "kind": kind, "group": GROUPS.get(kind, "jobs"),
            "experiment": event.experiment, "time": event.time.ToMicroseconds() / 1e6,
            "design_id": event.design_id, "job_id": event.job_id, "worker_id": event.worker_id,
            "message": event.message, "data": data if isinstance(data, dict) else {"value": data}}


@dataclass(eq=False)
class Subscriber:
    experiment: str  # "" for every experiment
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0

    def wants(self, event: dict[str, Any]) -> bool:
        return not self.experiment or event["experiment"] in ("", self.experiment)

    def offer(self, event: dict[str, Any]) -> None:
        """Runs on the subscriber's loop; a browser that stops reading loses events, not
        the dashboard's memory."""
        if self.queue.full():
            self.dropped += 1
        else:
            self.queue.put_nowait(event)


class EventHub:
    def __init__(self, client: Coordinator, retry_seconds: float = 1.0,
                 stream_seconds: float = 30.0):
        self.client = client
        self.retry_seconds, self.stream_seconds = retry_seconds, stream_seconds
        self.progress: dict[str, dict[str, Any]] = {}  # job id -> latest progress event
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)  # for a page's first feed
        self.connected = False
        self.last_seq: int | None = None
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="watch-hub", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def subscribe(self, experiment: str) -> Subscriber:
        sub = Subscriber(experiment, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in self.client.watch(after_seq=self.last_seq, timeout=self.stream_seconds):
                    self.connected = True
                    self.last_seq = event.seq
                    self.dispatch(event_dict(event))
                    if self._stop.is_set():
                        return
            except CoordinatorError:
                self.connected = False
                self._stop.wait(self.retry_seconds)

    def dispatch(self, event: dict[str, Any]) -> None:
        self.recent.append(event)
        if event["kind"] == "job_progress":
            self.progress[event["job_id"]] = event
        elif event["kind"] in FINISHED:
            self.progress.pop(event["job_id"], None)
        with self._lock:
            targets = [s for s in self._subscribers if s.wants(event)]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, event)
            except RuntimeError:  # the subscriber's loop has closed
                self.unsubscribe(sub)

"""Token accounting per (caller, experiment, model), readable over RPC and as Prometheus metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ("caller", "experiment", "model")


@dataclass
class UsageTotals:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Metrics:
    """The gateway's Prometheus metrics, in a registry of its own (one per gateway)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("genesys_llm_requests", "Chat requests", LABELS, registry=r)
        self.errors = Counter("genesys_llm_errors", "Chat requests that failed", LABELS, registry=r)
        self.prompt_tokens = Counter("genesys_llm_prompt_tokens", "Prompt tokens", LABELS, registry=r)
        self.completion_tokens = Counter(
            "genesys_llm_completion_tokens", "Completion tokens", LABELS, registry=r
        )
        self.latency = Histogram(
            "genesys_llm_request_seconds", "Chat request latency", ("model",), registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.in_flight = Gauge("genesys_llm_in_flight", "Requests being served", ("model",), registry=r)
        self.queued = Gauge("genesys_llm_queued", "Requests waiting for a slot", ("model",), registry=r)
        self.replica_healthy = Gauge(
            "genesys_llm_replica_healthy", "1 when the replica is in the pool", ("model", "url"), registry=r
        )


class UsageLedger:
    """Counts requests, errors and tokens; mirrors every update into the Prometheus counters."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._totals: dict[tuple[str, str, str], UsageTotals] = {}
        self._lock = threading.Lock()

    def record(
        self, caller: str, experiment: str, model: str, *,
        prompt_tokens: int = 0, completion_tokens: int = 0, error: bool = False,
    ) -> None:
        key = (caller, experiment, model)
        with self._lock:
            totals = self._totals.setdefault(key, UsageTotals())
            totals.requests += 1
            totals.errors += int(error)
            totals.prompt_tokens += prompt_tokens
            totals.completion_tokens += completion_tokens
        m = self._metrics
        m.requests.labels(*key).inc()
        if error:
            m.errors.labels(*key).inc()
        m.prompt_tokens.labels(*key).inc(prompt_tokens)
        m.completion_tokens.labels(*key).inc(completion_tokens)

    def query(self, caller: str = "", experiment: str = "") -> list[tuple[tuple[str, str, str], UsageTotals]]:
        """Rows matching the filters (empty filter = any), sorted by key."""
        with self._lock:
            rows = [
                (key, UsageTotals(**vars(totals)))
                for key, totals in self._totals.items()
                if (not caller or key[0] == caller) and (not experiment or key[1] == experiment)
            ]
        return sorted(rows, key=lambda row: row[0])

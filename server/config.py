"""Coordinator settings: one TOML file, every key overridable by GENESYS_* variables.

Example ``coordinator.toml``::

    listen = "0.0.0.0:50051"
    data_dir = "/var/lib/genesys"
    [store]
    url = "mongodb://db:27017/genesys"     # empty: SQLite file in data_dir
    [tls]
    cert = "server.pem"
    key = "server.key"
    [scheduler]
    lease_seconds = 120

``GENESYS_LISTEN``, ``GENESYS_STORE_URL``, ``GENESYS_SCHEDULER_LEASE_SECONDS`` ... override.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from genesys.config import TlsConfig, load_config, one_of, positive


@dataclass
class StoreConfig:
    url: str = ""                      # "" or sqlite:///path.db or mongodb://...
    sqlite_sync: str = field(default="normal", metadata={"check": one_of("normal", "full")})


@dataclass
class SchedulerConfig:
    lease_seconds: int = field(default=60, metadata={"check": positive})
    max_attempts: int = field(default=3, metadata={"check": positive})
    heartbeat_seconds: int = field(default=5, metadata={"check": positive})
    dead_after_seconds: int = field(default=20, metadata={"check": positive})
    max_wait_seconds: float = field(default=30.0, metadata={"check": positive})
    recheck_seconds: float = field(default=5.0, metadata={"check": positive})
    reap_interval_seconds: float = field(default=1.0, metadata={"check": positive})
    default_open_design_jobs: int = field(default=4, metadata={"check": positive})
    # an unfinished ledger move older than this is settled by the reconciler (MongoDB)
    reconcile_grace_seconds: float = field(default=60.0, metadata={"check": positive})


@dataclass
class LimitsConfig:
    max_code_bytes: int = field(default=256_000, metadata={"check": positive})
    max_trace_bytes: int = field(default=2_000_000, metadata={"check": positive})
    max_metrics_bytes: int = field(default=1_000_000, metadata={"check": positive})
    max_message_bytes: int = field(default=16_000_000, metadata={"check": positive})


@dataclass
class RetentionConfig:
    events: int = field(default=100_000, metadata={"check": positive})  # newest events kept
    dead_workers_seconds: float = field(default=86_400.0, metadata={"check": positive})
    prune_interval_seconds: float = field(default=60.0, metadata={"check": positive})


@dataclass
class ServerConfig:
    listen: str = "127.0.0.1:50051"
    data_dir: str = ".genesys"
    seeds_dir: str = ""                # empty: the seeds shipped with genesys.lmade
    threads: int = field(default=16, metadata={"check": positive})  # RPC logic + store calls
    store: StoreConfig = field(default_factory=StoreConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()


def load_server_config(path: str | None = None, **overrides) -> ServerConfig:
    """The coordinator config from ``path``, GENESYS_* variables and dotted overrides."""
    return load_config(ServerConfig, path, overrides=overrides)

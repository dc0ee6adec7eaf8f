"""The storage interface of the coordinator, and `open_store(url)` choosing a backend.

Records are genesys.v1 protobuf messages (stored whole, plus the columns that queries
filter on). Every method is atomic on its own; the operations the scheduler builds on
(`replace_job`, the ledger moves, `insert_design`, `insert_job`) are conditional, so the
scheduler stays correct without holding a lock across calls. Backends:
`sqlite_store.SqliteStore` (embedded default) and `mongo_store.MongoStore` (mongoengine).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from genesys.v1 import auth_pb2, budget_pb2, design_pb2, experiment_pb2, job_pb2


@dataclass(frozen=True)
class LedgerRow:
    rung: str
    total: int
    reserved: int
    committed: int


MANUAL = "manual"              # the job id of ledger entries of results reported by hand
REPORT_PREFIX = "report:"      # hold.job_id of a result being reported by hand: report:<design>


@dataclass(frozen=True)
class Hold:
    """One reserved unit whose move is unfinished (stores without transactions)."""

    experiment: str
    rung: str
    key: str
    job_id: str       # the job, or REPORT_PREFIX + design id
    at: float         # when it was reserved
    current: bool     # the job names this hold (its latest lease reserved it)


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    role: int                 # auth_pb2.Role
    secret_hash: str
    created_at: float
    expires_at: float = 0.0   # 0: never
    revoked: bool = False

    def info(self) -> auth_pb2.TokenInfo:
        info = auth_pb2.TokenInfo(id=self.id, name=self.name, role=self.role,
                                  revoked=self.revoked)
        info.created_at.FromNanoseconds(int(self.created_at * 1e9))
        if self.expires_at:
            info.expires_at.FromNanoseconds(int(self.expires_at * 1e9))
        return info


@dataclass(frozen=True)
class DesignQuery:
    experiment: str
    state: int = 0
    quadrant: int = 0
    verified_rung: str = ""
    parent: str = ""
    digest: str = ""
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class JobQuery:
    experiment: str = ""
    state: int = 0
    kind: int = 0
    worker_id: str = ""
    design_id: str = ""
    limit: int = 100


OPEN_JOB_STATES = (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_LEASED)


def deadline_of(job: job_pb2.Job) -> float:
    """The lease deadline in seconds since the epoch (0 when unset)."""
    return job.lease_deadline.ToNanoseconds() / 1e9 if job.HasField("lease_deadline") else 0.0


def design_rungs(design: design_pb2.Design) -> list[str]:
    return [r.rung for r in design.results]


def basic_view(design: design_pb2.Design) -> design_pb2.Design:
    """The design without tree, source and prompts (lists, selection)."""
    out = design_pb2.Design()
    out.CopyFrom(design)
    out.ClearField("tree")
    out.ClearField("source")
    out.trace.ClearField("prompts")
    return out


def with_scores(body: bytes, fitness: float, confidence: int, quadrant: int,
                fitness_stderr: float | None = 0.0) -> design_pb2.Design:
    """A stored design body with its derived scores (kept in their own columns)."""
    design = design_pb2.Design.FromString(body)
    design.fitness, design.confidence, design.quadrant = fitness, confidence, quadrant
    design.fitness_stderr = fitness_stderr or 0.0
    return design


class Store(ABC):
    """Durable state of the coordinator. Implementations must be safe to share by threads;
    `max_threads` caps how many may call at once (None: the server's setting)."""

    max_threads: int | None = None

    # -- experiments ------------------------------------------------------------------
    @abstractmethod
    def create_experiment(self, exp: experiment_pb2.Experiment) -> None:
        """Insert; raises errors.AlreadyExists if the name is taken."""

    @abstractmethod
    def get_experiment(self, name: str) -> experiment_pb2.Experiment | None: ...

    @abstractmethod
    def list_experiments(self, limit: int = 100) -> list[experiment_pb2.Experiment]: ...

    @abstractmethod
    def update_experiment(self, exp: experiment_pb2.Experiment) -> None: ...

    # -- designs ----------------------------------------------------------------------
    @abstractmethod
    def insert_design(self, design: design_pb2.Design) -> None:
        """Insert; raises errors.DuplicateDesign naming the design with the same digest."""

    @abstractmethod
    def get_design(self, design_id: str) -> design_pb2.Design | None: ...

    @abstractmethod
    def list_designs(self, query: DesignQuery) -> tuple[list[design_pb2.Design], int]:
        """Designs matching the query in submission order, and how many match in all."""

    @abstractmethod
    def experiment_designs(self, experiment: str) -> list[design_pb2.Design]:
        """Every design of an experiment in submission order, in the basic view (no tree,
        source or prompts: cheap to load for selection)."""

    @abstractmethod
    def update_designs(self, designs: list[design_pb2.Design]) -> None:
        """Overwrite existing designs (full messages: results, state, scores)."""

    @abstractmethod
    def update_scores(self, designs: list[design_pb2.Design]) -> None:
        """Write only fitness, confidence and quadrant of these designs."""

    @abstractmethod
    def children_of(self, design_id: str) -> list[str]: ...

    # -- jobs -------------------------------------------------------------------------
    @abstractmethod
    def insert_job(self, job: job_pb2.Job, dedupe_key: str = "") -> None:
        """Insert; raises errors.AlreadyExists if another job holds the dedupe key."""

    @abstractmethod
    def get_job(self, job_id: str) -> job_pb2.Job | None: ...

    @abstractmethod
    def list_jobs(self, query: JobQuery) -> list[job_pb2.Job]:
        """Most recently created first."""

    @abstractmethod
    def replace_job(self, new: job_pb2.Job, expect: job_pb2.Job) -> bool:
        """Write `new` only if the stored job still has `expect`'s state, fencing token and
        lease deadline; True when written."""

    @abstractmethod
    def claim_job(self, job: job_pb2.Job, expect: job_pb2.Job | None, dedupe_key: str = "",
                  reserve: tuple[str, str, int] | None = None) -> bool:
        """Lease a job in one step: insert `job` (expect None; refused if the dedupe key is
        taken) or replace `expect` by it, and reserve one unit of `reserve` = (experiment,
        rung, limit) if given. Nothing is written unless every part succeeds."""

    @abstractmethod
    def settle_job(self, new: job_pb2.Job, expect: job_pb2.Job, ledger: str = "",
                   design: design_pb2.Design | None = None, release_dedupe: bool = False) -> bool:
        """Move a leased job on in one step: replace `expect` by `new`, then apply the
        ledger move ("commit" or "refund") of its rung, overwrite `design` if given and
        let a new job take the job's dedupe key if `release_dedupe`."""

    @abstractmethod
    def record_result(self, design: design_pb2.Design, rung: str, limit: int) -> bool:
        """A result reported by hand: spend one unit of the rung (if reserved + committed <
        limit) and write the design, in one step; False (nothing written) when spent."""

    @abstractmethod
    def unsettled_holds(self, before: float) -> list[Hold]:
        """Reservations made before `before` whose move may be unfinished (a crash between
        writes); always empty where every compound write is one transaction."""

    @abstractmethod
    def settle_hold(self, hold: Hold, commit: bool) -> bool:
        """Commit or refund an unsettled hold; False if it is already settled."""

    @abstractmethod
    def queued_jobs(self, experiment: str, kind: int, rung: str, limit: int) -> list[job_pb2.Job]:
        """Oldest queued jobs of one experiment and kind (and rung, unless empty)."""

    @abstractmethod
    def expired_leases(self, now: float, limit: int = 500) -> list[job_pb2.Job]: ...

    @abstractmethod
    def count_jobs(self, experiment: str, kind: int, states: tuple[int, ...]) -> int: ...

    @abstractmethod
    def verify_keys(self, experiment: str) -> set[tuple[str, str]]:
        """(design id, rung) of every VERIFY job of the experiment that was not cancelled."""

    # -- budget ledger ----------------------------------------------------------------
    @abstractmethod
    def set_budget(self, experiment: str, rung: str, total: int) -> None:
        """Set a rung's total; raises errors.FailedPrecondition below reserved + committed."""

    @abstractmethod
    def budget(self, experiment: str) -> list[LedgerRow]: ...

    @abstractmethod
    def ledger_reserve(self, experiment: str, rung: str, limit: int, job_id: str) -> bool:
        """reserved += 1 if reserved + committed < limit; True when reserved."""

    @abstractmethod
    def ledger_commit(self, experiment: str, rung: str, job_id: str) -> bool:
        """Move one reserved unit to committed; False when nothing is reserved."""

    @abstractmethod
    def ledger_refund(self, experiment: str, rung: str, job_id: str) -> bool:
        """Release one reserved unit; False when nothing is reserved."""

    @abstractmethod
    def ledger_entries(self, experiment: str, limit: int = 100) -> list[budget_pb2.LedgerEntry]:
        """Most recent first."""

    # -- workers ----------------------------------------------------------------------
    @abstractmethod
    def put_worker(self, worker: job_pb2.Worker) -> None: ...

    @abstractmethod
    def get_worker(self, worker_id: str) -> job_pb2.Worker | None: ...

    @abstractmethod
    def list_workers(self) -> list[job_pb2.Worker]: ...

    @abstractmethod
    def delete_worker(self, worker_id: str) -> None: ...

    # -- tokens -----------------------------------------------------------------------
    @abstractmethod
    def insert_token(self, token: TokenRecord) -> None:
        """Insert; raises errors.AlreadyExists if the name is taken."""

    @abstractmethod
    def get_token(self, token_id: str) -> TokenRecord | None: ...

    @abstractmethod
    def list_tokens(self) -> list[TokenRecord]: ...

    @abstractmethod
    def revoke_token(self, id_or_name: str) -> TokenRecord | None: ...

    # -- events -----------------------------------------------------------------------
    @abstractmethod
    def append_events(self, events: list[design_pb2.Event]) -> None:
        """Store events whose `seq` the caller assigned (increasing, unique)."""

    @abstractmethod
    def last_event_seq(self) -> int:
        """The highest stored event seq (0 when none)."""

    @abstractmethod
    def events_after(self, seq: int, experiment: str = "", limit: int = 1000) -> list[design_pb2.Event]: ...

    @abstractmethod
    def prune_events(self, keep: int) -> int:
        """Delete all but the newest `keep` events; returns how many were deleted."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (the data is already durable)."""


def open_store(url: str, data_dir: Path, sqlite_sync: str = "normal") -> Store:
    """The store for a URL: "" or sqlite:///file -> SQLite, mongodb://... -> MongoDB."""
    if url.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        try:
            from .mongo_store import MongoStore
        except ImportError as e:
            raise ValueError(f"store.url: MongoDB needs the server extra "
                             f"(pip install 'genesys[server]'): {e}") from None
        return MongoStore(url)
    if url and not url.startswith("sqlite:///"):
        raise ValueError(f"store.url: unsupported URL {url!r} (sqlite:///PATH or mongodb://...)")
    from .sqlite_store import SqliteStore

    path = Path(url.removeprefix("sqlite:///")) if url else data_dir / "coordinator.db"
    return SqliteStore(path, sync=sqlite_sync)

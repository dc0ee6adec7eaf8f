"""The embedded store: one SQLite file in WAL mode, one connection per thread.

Every write runs in a BEGIN IMMEDIATE transaction, so a committed call survives a crash
of the process (``sync="full"`` also survives power loss, at the cost of an fsync).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genesys.v1 import budget_pb2, design_pb2, experiment_pb2, job_pb2

from .errors import AlreadyExists, DuplicateDesign, FailedPrecondition
from .store import (
    MANUAL,
    DesignQuery,
    Hold,
    JobQuery,
    LedgerRow,
    Store,
    TokenRecord,
    basic_view,
    deadline_of,
    design_rungs,
    with_scores,
)

SCHEMA_VERSION = 3
# older schema versions this coordinator upgrades in place: version -> statements
MIGRATIONS = {2: ("ALTER TABLE designs ADD COLUMN fitness_stderr REAL DEFAULT 0",)}
SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (name TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS designs (
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, digest TEXT NOT NULL, state INTEGER,
    quadrant INTEGER, rungs TEXT, fitness REAL, confidence INTEGER, summary BLOB NOT NULL,
    body BLOB NOT NULL, fitness_stderr REAL DEFAULT 0, UNIQUE (experiment, digest));
CREATE TABLE IF NOT EXISTS parents (
    child TEXT NOT NULL, parent TEXT NOT NULL, PRIMARY KEY (child, parent));
CREATE INDEX IF NOT EXISTS parents_parent ON parents (parent);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, kind INTEGER, state INTEGER,
    worker_id TEXT, design_id TEXT, rung TEXT, fencing INTEGER, deadline REAL,
    dedupe TEXT, body BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedupe ON jobs (dedupe) WHERE dedupe IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, kind);
CREATE INDEX IF NOT EXISTS jobs_experiment ON jobs (experiment, kind, state);
CREATE INDEX IF NOT EXISTS jobs_rung_queue ON jobs (experiment, kind, state, rung);
CREATE TABLE IF NOT EXISTS ledger (
    experiment TEXT NOT NULL, rung TEXT NOT NULL, total INTEGER NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0, committed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, rung));
CREATE TABLE IF NOT EXISTS ledger_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, experiment TEXT, rung TEXT, op INTEGER,
    amount INTEGER, job_id TEXT, time REAL);
CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, role INTEGER, secret_hash TEXT,
    created_at REAL, expires_at REAL, revoked INTEGER);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, experiment TEXT, body BLOB NOT NULL);
"""


class SqliteStore(Store):
    def __init__(self, path: Path | str, sync: str = "normal"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sync = sync
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        db = self._conn()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        existing = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'designs'").fetchone()[0]
        if existing and version in MIGRATIONS:
            for statement in MIGRATIONS[version]:
                db.execute(statement)
        elif existing and version != SCHEMA_VERSION:
            raise ValueError(f"store.url: {self.path} has schema version {version}, this "
                             f"coordinator needs {SCHEMA_VERSION}; move the file away")
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- plumbing ---------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync.upper()}")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._conn().execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple = ()) -> int:
        """One statement in autocommit mode (atomic on its own); returns the row count."""
        return self._conn().execute(sql, args).rowcount

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- experiments ------------------------------------------------------------------
    def create_experiment(self, exp: experiment_pb2.Experiment) -> None:
        try:
            self._write("INSERT INTO experiments VALUES (?, ?)", (exp.name, exp.SerializeToString()))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"experiment {exp.name!r} already exists") from None

    def get_experiment(self, name: str) -> experiment_pb2.Experiment | None:
        rows = self._read("SELECT body FROM experiments WHERE name = ?", (name,))
        return experiment_pb2.Experiment.FromString(rows[0][0]) if rows else None

    def list_experiments(self, limit: int = 100) -> list[experiment_pb2.Experiment]:
        rows = self._read("SELECT body FROM experiments ORDER BY rowid LIMIT ?", (limit,))
        return [experiment_pb2.Experiment.FromString(r[0]) for r in rows]

    def update_experiment(self, exp: experiment_pb2.Experiment) -> None:
        self._write("UPDATE experiments SET body = ? WHERE name = ?",
                    (exp.SerializeToString(), exp.name))

    # -- designs ----------------------------------------------------------------------
    def insert_design(self, design: design_pb2.Design) -> None:
        try:
            with self._tx() as db:
                db.execute("INSERT INTO designs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (design.id, design.experiment, design.digest, *_design_columns(design)))
                db.executemany("INSERT OR IGNORE INTO parents VALUES (?, ?)",
                               [(design.id, p) for p in design.parents])
        except sqlite3.IntegrityError:
            rows = self._read("SELECT id FROM designs WHERE experiment = ? AND digest = ?",
                              (design.experiment, design.digest))
            if not rows:
                raise AlreadyExists(f"design id {design.id!r} already exists") from None
            raise DuplicateDesign(rows[0][0], design.digest) from None

    def get_design(self, design_id: str) -> design_pb2.Design | None:
        rows = self._read(f"SELECT {FULL} FROM designs WHERE id = ?", (design_id,))
        return with_scores(*rows[0]) if rows else None

    def list_designs(self, query: DesignQuery) -> tuple[list[design_pb2.Design], int]:
        where, args = ["experiment = ?"], [query.experiment]
        for column, value in (("state", query.state), ("quadrant", query.quadrant),
                              ("digest", query.digest)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.verified_rung:
            where.append("rungs LIKE ?")
            args.append(f"%,{query.verified_rung},%")
        if query.parent:
            where.append("id IN (SELECT child FROM parents WHERE parent = ?)")
            args.append(query.parent)
        clause = " AND ".join(where)
        total = self._read(f"SELECT COUNT(*) FROM designs WHERE {clause}", tuple(args))[0][0]
        rows = self._read(f"SELECT {FULL} FROM designs WHERE {clause} ORDER BY rowid LIMIT ? "
                          "OFFSET ?", (*args, query.limit, query.offset))
        return [with_scores(*r) for r in rows], total

    def experiment_designs(self, experiment: str) -> list[design_pb2.Design]:
        rows = self._read(f"SELECT {SUMMARY} FROM designs WHERE experiment = ? ORDER BY rowid",
                          (experiment,))
        return [with_scores(*r) for r in rows]

    def update_designs(self, designs: list[design_pb2.Design]) -> None:
        with self._tx() as db:
            for d in designs:
                _write_design(db, d)

    def update_scores(self, designs: list[design_pb2.Design]) -> None:
        with self._tx() as db:
            db.executemany("UPDATE designs SET fitness = ?, confidence = ?, quadrant = ?, "
                           "fitness_stderr = ? WHERE id = ?",
                           [(d.fitness, d.confidence, d.quadrant, d.fitness_stderr, d.id)
                            for d in designs])

    def children_of(self, design_id: str) -> list[str]:
        rows = self._read("SELECT child FROM parents WHERE parent = ? ORDER BY rowid", (design_id,))
        return [r[0] for r in rows]

    # -- jobs -------------------------------------------------------------------------
    def insert_job(self, job: job_pb2.Job, dedupe_key: str = "") -> None:
        try:
            self._write("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*_job_columns(job), dedupe_key or None, job.SerializeToString()))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"job {job.id!r} or key {dedupe_key!r} already exists") from None

    def get_job(self, job_id: str) -> job_pb2.Job | None:
        rows = self._read("SELECT body FROM jobs WHERE id = ?", (job_id,))
        return job_pb2.Job.FromString(rows[0][0]) if rows else None

    def list_jobs(self, query: JobQuery) -> list[job_pb2.Job]:
        where, args = ["1 = 1"], []
        for column, value in (("experiment", query.experiment), ("state", query.state),
                              ("kind", query.kind), ("worker_id", query.worker_id),
                              ("design_id", query.design_id)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        rows = self._read(f"SELECT body FROM jobs WHERE {' AND '.join(where)} "
                          "ORDER BY rowid DESC LIMIT ?", (*args, query.limit))
        return [job_pb2.Job.FromString(r[0]) for r in rows]

    def replace_job(self, new: job_pb2.Job, expect: job_pb2.Job) -> bool:
        return self._replace(self._conn(), new, expect)

    @staticmethod
    def _replace(db: sqlite3.Connection, new: job_pb2.Job, expect: job_pb2.Job) -> bool:
        cur = db.execute(
            "UPDATE jobs SET id = ?, experiment = ?, kind = ?, state = ?, worker_id = ?, "
            "design_id = ?, rung = ?, fencing = ?, deadline = ?, body = ? "
            "WHERE id = ? AND state = ? AND fencing = ? AND deadline = ?",
            (*_job_columns(new), new.SerializeToString(), expect.id, expect.state,
             expect.fencing_token, deadline_of(expect)))
        return cur.rowcount == 1

    def claim_job(self, job: job_pb2.Job, expect: job_pb2.Job | None, dedupe_key: str = "",
                  reserve: tuple[str, str, int] | None = None) -> bool:
        if reserve is None:  # one statement: no transaction needed
            if expect is not None:
                return self.replace_job(job, expect)
            try:
                self.insert_job(job, dedupe_key)
                return True
            except AlreadyExists:
                return False
        try:
            with self._tx() as db:
                if not self._move(db, reserve[0], reserve[1], RESERVE, job.id, reserve[2]):
                    raise _Abort
                if expect is None:
                    db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (*_job_columns(job), dedupe_key or None, job.SerializeToString()))
                elif not self._replace(db, job, expect):
                    raise _Abort
            return True
        except (_Abort, sqlite3.IntegrityError):
            return False

    def settle_job(self, new: job_pb2.Job, expect: job_pb2.Job, ledger: str = "",
                   design: design_pb2.Design | None = None, release_dedupe: bool = False) -> bool:
        if not ledger and design is None and not release_dedupe:
            return self.replace_job(new, expect)
        with self._tx() as db:
            if not self._replace(db, new, expect):
                return False
            if ledger:
                self._move(db, new.experiment, new.rung, LEDGER_OPS[ledger], new.id)
            if design is not None:
                _write_design(db, design)
            if release_dedupe:
                db.execute("UPDATE jobs SET dedupe = NULL WHERE id = ?", (new.id,))
            return True

    def record_result(self, design: design_pb2.Design, rung: str, limit: int) -> bool:
        with self._tx() as db:
            if not self._move(db, design.experiment, rung, RESERVE, MANUAL, limit):
                return False
            self._move(db, design.experiment, rung, budget_pb2.LEDGER_OP_COMMIT, MANUAL)
            _write_design(db, design)
            return True

    def unsettled_holds(self, before: float) -> list[Hold]:
        return []  # every compound write is one transaction

    def settle_hold(self, hold: Hold, commit: bool) -> bool:
        return False

    def queued_jobs(self, experiment: str, kind: int, rung: str, limit: int) -> list[job_pb2.Job]:
        where, args = "experiment = ? AND kind = ? AND state = ?", [experiment, kind,
                                                                   job_pb2.JOB_STATE_QUEUED]
        if rung:
            where += " AND rung = ?"
            args.append(rung)
        rows = self._read(f"SELECT body FROM jobs WHERE {where} ORDER BY rowid LIMIT ?",
                          (*args, limit))
        return [job_pb2.Job.FromString(r[0]) for r in rows]

    def expired_leases(self, now: float, limit: int = 500) -> list[job_pb2.Job]:
        rows = self._read("SELECT body FROM jobs WHERE state = ? AND deadline < ? LIMIT ?",
                          (job_pb2.JOB_STATE_LEASED, now, limit))
        return [job_pb2.Job.FromString(r[0]) for r in rows]

    def count_jobs(self, experiment: str, kind: int, states: tuple[int, ...]) -> int:
        marks = ",".join("?" * len(states))
        return self._read(f"SELECT COUNT(*) FROM jobs WHERE experiment = ? AND kind = ? "
                          f"AND state IN ({marks})", (experiment, kind, *states))[0][0]

    def verify_keys(self, experiment: str) -> set[tuple[str, str]]:
        rows = self._read("SELECT design_id, rung FROM jobs WHERE experiment = ? AND kind = ? "
                          "AND state != ?", (experiment, job_pb2.JOB_KIND_VERIFY,
                                             job_pb2.JOB_STATE_CANCELLED))
        return {(d, r) for d, r in rows}

    # -- budget ledger ----------------------------------------------------------------
    def set_budget(self, experiment: str, rung: str, total: int) -> None:
        with self._tx() as db:
            row = db.execute("SELECT reserved + committed FROM ledger "
                             "WHERE experiment = ? AND rung = ?", (experiment, rung)).fetchone()
            if row and total < row[0]:
                raise FailedPrecondition(
                    f"total {total} < {row[0]} already reserved or committed at {rung}")
            db.execute("INSERT INTO ledger (experiment, rung, total) VALUES (?, ?, ?) "
                       "ON CONFLICT (experiment, rung) DO UPDATE SET total = excluded.total",
                       (experiment, rung, total))
            _entry(db, experiment, rung, budget_pb2.LEDGER_OP_SET, total, "")

    def budget(self, experiment: str) -> list[LedgerRow]:
        rows = self._read("SELECT rung, total, reserved, committed FROM ledger "
                          "WHERE experiment = ? ORDER BY rowid", (experiment,))
        return [LedgerRow(*r) for r in rows]

    @staticmethod
    def _move(db: sqlite3.Connection, experiment: str, rung: str, op: int, job_id: str,
              limit: int = 0) -> bool:
        sql, condition = MOVES[op]
        args = (experiment, rung, limit) if op == RESERVE else (experiment, rung)
        cur = db.execute(f"UPDATE ledger SET {sql} WHERE experiment = ? AND rung = ? AND {condition}",
                         args)
        if cur.rowcount != 1:
            return False
        _entry(db, experiment, rung, op, 1, job_id)
        return True

    def ledger_reserve(self, experiment: str, rung: str, limit: int, job_id: str) -> bool:
        with self._tx() as db:
            return self._move(db, experiment, rung, RESERVE, job_id, limit)

    def ledger_commit(self, experiment: str, rung: str, job_id: str) -> bool:
        with self._tx() as db:
            return self._move(db, experiment, rung, budget_pb2.LEDGER_OP_COMMIT, job_id)

    def ledger_refund(self, experiment: str, rung: str, job_id: str) -> bool:
        with self._tx() as db:
            return self._move(db, experiment, rung, budget_pb2.LEDGER_OP_REFUND, job_id)

    def ledger_entries(self, experiment: str, limit: int = 100) -> list[budget_pb2.LedgerEntry]:
        rows = self._read("SELECT rung, op, amount, job_id, time FROM ledger_entries "
                          "WHERE experiment = ? ORDER BY id DESC LIMIT ?", (experiment, limit))
        entries = []
        for rung, op, amount, job_id, when in rows:
            entry = budget_pb2.LedgerEntry(experiment=experiment, rung=rung, op=op,
                                           amount=amount, job_id=job_id)
            entry.time.FromNanoseconds(int(when * 1e9))
            entries.append(entry)
        return entries

    # -- workers ----------------------------------------------------------------------
    def put_worker(self, worker: job_pb2.Worker) -> None:
        self._write("INSERT OR REPLACE INTO workers VALUES (?, ?)",
                    (worker.id, worker.SerializeToString()))

    def get_worker(self, worker_id: str) -> job_pb2.Worker | None:
        rows = self._read("SELECT body FROM workers WHERE id = ?", (worker_id,))
        return job_pb2.Worker.FromString(rows[0][0]) if rows else None

    def list_workers(self) -> list[job_pb2.Worker]:
        rows = self._read("SELECT body FROM workers ORDER BY rowid")
        return [job_pb2.Worker.FromString(r[0]) for r in rows]

    def delete_worker(self, worker_id: str) -> None:
        self._write("DELETE FROM workers WHERE id = ?", (worker_id,))

    # -- tokens -----------------------------------------------------------------------
    def insert_token(self, token: TokenRecord) -> None:
        try:
            self._write("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (token.id, token.name, token.role, token.secret_hash, token.created_at,
                         token.expires_at, int(token.revoked)))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"token name {token.name!r} already exists") from None

    def get_token(self, token_id: str) -> TokenRecord | None:
        rows = self._read("SELECT * FROM tokens WHERE id = ?", (token_id,))
        return _token(rows[0]) if rows else None

    def list_tokens(self) -> list[TokenRecord]:
        return [_token(r) for r in self._read("SELECT * FROM tokens ORDER BY rowid")]

    def revoke_token(self, id_or_name: str) -> TokenRecord | None:
        with self._tx() as db:
            db.execute("UPDATE tokens SET revoked = 1 WHERE id = ? OR name = ?",
                       (id_or_name, id_or_name))
            row = db.execute("SELECT * FROM tokens WHERE id = ? OR name = ?",
                             (id_or_name, id_or_name)).fetchone()
        return _token(row) if row else None

    # -- events -----------------------------------------------------------------------
    def append_events(self, events: list[design_pb2.Event]) -> None:
        with self._tx() as db:
            db.executemany("INSERT INTO events VALUES (?, ?, ?)",
                           [(e.seq, e.experiment, e.SerializeToString()) for e in events])

    def last_event_seq(self) -> int:
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0]

    def events_after(self, seq: int, experiment: str = "", limit: int = 1000) -> list[design_pb2.Event]:
        if experiment:
            rows = self._read("SELECT body FROM events WHERE seq > ? AND experiment = ? "
                              "ORDER BY seq LIMIT ?", (seq, experiment, limit))
        else:
            rows = self._read("SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                              (seq, limit))
        return [design_pb2.Event.FromString(r[0]) for r in rows]


    def prune_events(self, keep: int) -> int:
        return self._write("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
                           (keep,))


class _Abort(Exception):
    """Roll a compound write back."""


RESERVE = budget_pb2.LEDGER_OP_RESERVE
# op -> (SET clause, WHERE condition)
MOVES = {
    RESERVE: ("reserved = reserved + 1", "reserved + committed < ?"),
    budget_pb2.LEDGER_OP_COMMIT: ("reserved = reserved - 1, committed = committed + 1",
                                  "reserved > 0"),
    budget_pb2.LEDGER_OP_REFUND: ("reserved = reserved - 1", "reserved > 0"),
}
LEDGER_OPS = {"commit": budget_pb2.LEDGER_OP_COMMIT, "refund": budget_pb2.LEDGER_OP_REFUND}


FULL = "body, fitness, confidence, quadrant, fitness_stderr"
SUMMARY = "summary, fitness, confidence, quadrant, fitness_stderr"


def _design_columns(d: design_pb2.Design) -> tuple:
    return (d.state, d.quadrant, _rungs_column(d), d.fitness, d.confidence,
            basic_view(d).SerializeToString(), d.SerializeToString(), d.fitness_stderr)


def _write_design(db: sqlite3.Connection, d: design_pb2.Design) -> None:
    db.execute("UPDATE designs SET state = ?, quadrant = ?, rungs = ?, fitness = ?, "
               "confidence = ?, summary = ?, body = ?, fitness_stderr = ? WHERE id = ?",
               (*_design_columns(d), d.id))


def _rungs_column(design: design_pb2.Design) -> str:
    return "," + ",".join(design_rungs(design)) + ","


def _job_columns(job: job_pb2.Job) -> tuple:
    return (job.id, job.experiment, job.kind, job.state, job.worker_id, job.design_id, job.rung,
            job.fencing_token, deadline_of(job))


def _entry(db: sqlite3.Connection, experiment: str, rung: str, op: int, amount: int,
           job_id: str) -> None:
    db.execute("INSERT INTO ledger_entries (experiment, rung, op, amount, job_id, time) "
               "VALUES (?, ?, ?, ?, ?, ?)", (experiment, rung, op, amount, job_id, time.time()))


def _token(row: tuple) -> TokenRecord:
    return TokenRecord(row[0], row[1], row[2], row[3], row[4], row[5] or 0.0, bool(row[6]))


"""The MongoDB store (mongoengine). Conditional writes are single-document updates with a
filter, which MongoDB applies atomically; the event sequence uses a counter document.

A lease or a completion touches several documents (ledger, job, design). Instead of
multi-document transactions (which need a replica set), every reservation is a *hold*: an
entry {key, job, at} pushed onto the rung's ledger document in the same update that counts
it, and the key is written on the job that the claim creates. Commit and refund pull the
hold in the update that moves the count, so each happens at most once however often it is
retried. A crash between the writes leaves a hold behind; `unsettled_holds` lists them and
the scheduler's reconciler finishes the move from the job's state (scheduler.reconcile).

``mongomock://host/db`` connects the same documents to an in-memory mongomock client
(tests; single-threaded).
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlparse

import mongoengine as me
from genesys.v1 import budget_pb2, design_pb2, experiment_pb2, job_pb2
from mongoengine.errors import NotUniqueError

from .errors import AlreadyExists, DuplicateDesign, FailedPrecondition
from .store import (
    MANUAL,
    REPORT_PREFIX,
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

ALIAS = "genesys"


def _meta(collection: str, *indexes) -> dict:
    return {"collection": collection, "db_alias": ALIAS, "indexes": list(indexes),
            "auto_create_index": False}


class ExperimentDoc(me.Document):
    name = me.StringField(primary_key=True)
    created = me.FloatField()
    body = me.BinaryField(required=True)
    meta = _meta("experiments", "created")


class DesignDoc(me.Document):
    key = me.StringField(primary_key=True)
    experiment = me.StringField(required=True)
    digest = me.StringField(required=True)
    seq = me.IntField()
    state = me.IntField()
    quadrant = me.IntField()
    rungs = me.ListField(me.StringField())
    parents = me.ListField(me.StringField())
    fitness = me.FloatField(default=0.0)
    confidence = me.IntField(default=0)
    fitness_stderr = me.FloatField(default=0.0)
    summary = me.BinaryField(required=True)
    body = me.BinaryField(required=True)
    meta = _meta("designs", {"fields": ["experiment", "digest"], "unique": True},
                 ("experiment", "seq"), "parents")


class JobDoc(me.Document):
    key = me.StringField(primary_key=True)
    experiment = me.StringField()
    seq = me.IntField()
    kind = me.IntField()
    state = me.IntField()
    worker_id = me.StringField()
    design_id = me.StringField()
    rung = me.StringField()
    fencing = me.IntField()
    deadline = me.FloatField()
    dedupe = me.StringField()
    hold = me.StringField()  # key of the ledger hold of the job's current (or last) lease
    body = me.BinaryField(required=True)
    meta = _meta("jobs", {"fields": ["dedupe"], "unique": True, "sparse": True},
                 ("state", "kind", "seq"), ("state", "deadline"), ("experiment", "kind"),
                 ("experiment", "kind", "state", "rung", "seq"))


class LedgerDoc(me.Document):
    experiment = me.StringField(required=True)
    rung = me.StringField(required=True)
    seq = me.IntField()
    total = me.IntField(default=0)
    reserved = me.IntField(default=0)
    committed = me.IntField(default=0)
    used = me.IntField(default=0)   # reserved + committed, so a reserve is one filtered update
    holds = me.ListField(me.DictField())  # {key, job, at}: one per reserved unit
    meta = _meta("ledger", {"fields": ["experiment", "rung"], "unique": True}, "holds.at")


class LedgerEntryDoc(me.Document):
    experiment = me.StringField()
    rung = me.StringField()
    op = me.IntField()
    amount = me.IntField()
    job_id = me.StringField()
    time = me.FloatField()
    key = me.StringField()  # hold key + op: a retried commit writes its entry once
    meta = _meta("ledger_entries", ("experiment", "-time"),
                 {"fields": ["key"], "unique": True, "sparse": True})


class WorkerDoc(me.Document):
    key = me.StringField(primary_key=True)
    seq = me.IntField()
    body = me.BinaryField(required=True)
    meta = _meta("workers")


class TokenDoc(me.Document):
    key = me.StringField(primary_key=True)
    name = me.StringField(unique=True)
    role = me.IntField()
    secret_hash = me.StringField()
    created_at = me.FloatField()
    expires_at = me.FloatField()
    revoked = me.BooleanField(default=False)
    meta = _meta("tokens")


class EventDoc(me.Document):
    seq = me.IntField(primary_key=True)
    experiment = me.StringField()
    body = me.BinaryField(required=True)
    meta = _meta("events", ("experiment", "seq"))


class CounterDoc(me.Document):
    name = me.StringField(primary_key=True)
    value = me.IntField(default=0)
    meta = _meta("counters")


DOCUMENTS = (ExperimentDoc, DesignDoc, JobDoc, LedgerDoc, LedgerEntryDoc, WorkerDoc, TokenDoc,
             EventDoc, CounterDoc)


class MongoStore(Store):
    def __init__(self, url: str):
        parsed = urlparse(url)
        db = parsed.path.strip("/") or "genesys"
        me.disconnect(ALIAS)
        if parsed.scheme == "mongomock":
            import mongomock

            me.connect(db=db, alias=ALIAS, host="mongodb://localhost",
                       mongo_client_class=mongomock.MongoClient, uuidRepresentation="standard")
            self.max_threads = 1  # mongomock is not thread-safe
        else:
            me.connect(db=db, alias=ALIAS, host=url, uuidRepresentation="standard")
        for doc in DOCUMENTS:
            doc.ensure_indexes()
        self.adopt_unheld_leases()

    def adopt_unheld_leases(self) -> int:
        """Give a hold to every leased VERIFY job without one (reserved by a coordinator
        from before holds), so its completion commits; returns how many."""
        adopted = 0
        for doc in JobDoc.objects(state=job_pb2.JOB_STATE_LEASED, kind=job_pb2.JOB_KIND_VERIFY,
                                  hold=None).only("key", "experiment", "rung"):
            key = secrets.token_hex(8)
            self._ledger.update_one({"experiment": doc.experiment, "rung": doc.rung},
                                    {"$push": {"holds": {"key": key, "job": doc.key,
                                                         "at": time.time()}}})
            JobDoc.objects(key=doc.key).update_one(set__hold=key)
            adopted += 1
        return adopted

    def close(self) -> None:
        me.disconnect(ALIAS)

    def _next(self, name: str) -> int:
        return CounterDoc.objects(name=name).modify(upsert=True, new=True, inc__value=1).value

    # -- experiments ------------------------------------------------------------------
    def create_experiment(self, exp: experiment_pb2.Experiment) -> None:
        try:
            ExperimentDoc(name=exp.name, created=time.time(),
                          body=exp.SerializeToString()).save(force_insert=True)
        except NotUniqueError:
            raise AlreadyExists(f"experiment {exp.name!r} already exists") from None

    def get_experiment(self, name: str) -> experiment_pb2.Experiment | None:
        doc = ExperimentDoc.objects(name=name).first()
        return experiment_pb2.Experiment.FromString(doc.body) if doc else None

    def list_experiments(self, limit: int = 100) -> list[experiment_pb2.Experiment]:
        docs = ExperimentDoc.objects.order_by("created").limit(limit)
        return [experiment_pb2.Experiment.FromString(d.body) for d in docs]

    def update_experiment(self, exp: experiment_pb2.Experiment) -> None:
        ExperimentDoc.objects(name=exp.name).update_one(set__body=exp.SerializeToString())

    # -- designs ----------------------------------------------------------------------
    def insert_design(self, design: design_pb2.Design) -> None:
        doc = DesignDoc(key=design.id, experiment=design.experiment, digest=design.digest,
                        seq=self._next("designs"), parents=list(design.parents),
                        **_design_fields(design))
        try:
            doc.save(force_insert=True)
        except NotUniqueError:
            existing = DesignDoc.objects(experiment=design.experiment,
                                         digest=design.digest).only("key").first()
            if existing is None:
                raise AlreadyExists(f"design id {design.id!r} already exists") from None
            raise DuplicateDesign(existing.key, design.digest) from None

    def get_design(self, design_id: str) -> design_pb2.Design | None:
        doc = DesignDoc.objects(key=design_id).only(*FULL).first()
        return _full(doc) if doc else None

    def list_designs(self, query: DesignQuery) -> tuple[list[design_pb2.Design], int]:
        filters = {"experiment": query.experiment}
        for name in ("state", "quadrant", "digest"):
            if getattr(query, name):
                filters[name] = getattr(query, name)
        if query.verified_rung:
            filters["rungs"] = query.verified_rung
        if query.parent:
            filters["parents"] = query.parent
        found = DesignDoc.objects(**filters)
        docs = found.only(*FULL).order_by("seq").skip(query.offset).limit(query.limit)
        return [_full(d) for d in docs], found.count()

    def experiment_designs(self, experiment: str) -> list[design_pb2.Design]:
        docs = DesignDoc.objects(experiment=experiment).only(*SUMMARY).order_by("seq")
        return [with_scores(d.summary, d.fitness, d.confidence, d.quadrant, d.fitness_stderr)
                for d in docs]

    def update_designs(self, designs: list[design_pb2.Design]) -> None:
        for d in designs:
            DesignDoc.objects(key=d.id).update_one(
                **{f"set__{k}": v for k, v in _design_fields(d).items()})

    def update_scores(self, designs: list[design_pb2.Design]) -> None:
        for d in designs:
            DesignDoc.objects(key=d.id).update_one(set__fitness=d.fitness,
                                                   set__confidence=d.confidence,
                                                   set__quadrant=d.quadrant,
                                                   set__fitness_stderr=d.fitness_stderr)

    def children_of(self, design_id: str) -> list[str]:
        return [d.key for d in DesignDoc.objects(parents=design_id).only("key").order_by("seq")]

    # -- jobs -------------------------------------------------------------------------
    def insert_job(self, job: job_pb2.Job, dedupe_key: str = "", hold: str = "") -> None:
        doc = JobDoc(key=job.id, seq=self._next("jobs"), dedupe=dedupe_key or None,
                     hold=hold or None, body=job.SerializeToString(), **_job_fields(job))
        try:
            doc.save(force_insert=True)
        except NotUniqueError:
            raise AlreadyExists(f"job {job.id!r} or key {dedupe_key!r} already exists") from None

    def get_job(self, job_id: str) -> job_pb2.Job | None:
        doc = JobDoc.objects(key=job_id).only("body").first()
        return job_pb2.Job.FromString(doc.body) if doc else None

    def list_jobs(self, query: JobQuery) -> list[job_pb2.Job]:
        filters = {name: getattr(query, name) for name in
                   ("experiment", "state", "kind", "worker_id", "design_id") if getattr(query, name)}
        docs = JobDoc.objects(**filters).only("body").order_by("-seq").limit(query.limit)
        return [job_pb2.Job.FromString(d.body) for d in docs]

    def replace_job(self, new: job_pb2.Job, expect: job_pb2.Job) -> bool:
        return self._replace(new, expect) is not None

    def _replace(self, new: job_pb2.Job, expect: job_pb2.Job, hold: str | None = None,
                 release_dedupe: bool = False) -> JobDoc | None:
        """The job document before the conditional replace, or None if it did not match."""
        updates = {f"set__{k}": v for k, v in _job_fields(new).items()}
        if hold is not None:
            updates["set__hold"] = hold
        if release_dedupe:
            updates["unset__dedupe"] = True
        return JobDoc.objects(key=expect.id, state=expect.state, fencing=expect.fencing_token,
                              deadline=deadline_of(expect)).only("hold").modify(
            new=False, set__body=new.SerializeToString(), **updates)

    def claim_job(self, job: job_pb2.Job, expect: job_pb2.Job | None, dedupe_key: str = "",
                  reserve: tuple[str, str, int] | None = None) -> bool:
        # Reserve (a fresh hold), then write the job naming the hold; undo a refused write.
        hold = ""
        if reserve:
            hold = self._reserve(reserve[0], reserve[1], reserve[2], job.id)
            if not hold:
                return False
        if expect is None:
            try:
                self.insert_job(job, dedupe_key, hold)
                return True
            except AlreadyExists:
                written = False
        else:
            written = self._replace(job, expect, hold=hold) is not None
        if not written and hold:
            self._release(reserve[0], reserve[1], hold, job.id, commit=False)
        return written

    def settle_job(self, new: job_pb2.Job, expect: job_pb2.Job, ledger: str = "",
                   design: design_pb2.Design | None = None, release_dedupe: bool = False) -> bool:
        # Job first (the point of no return), then the design, then the ledger; a crash in
        # between leaves the hold, which the reconciler settles from the job's state.
        before = self._replace(new, expect, release_dedupe=release_dedupe)
        if before is None:
            return False
        if design is not None:
            self.update_designs([design])
        if ledger and before.hold:
            self._release(new.experiment, new.rung, before.hold, new.id, ledger == "commit")
        return True

    def record_result(self, design: design_pb2.Design, rung: str, limit: int) -> bool:
        hold = self._reserve(design.experiment, rung, limit, REPORT_PREFIX + design.id)
        if not hold:
            return False
        self.update_designs([design])
        self._release(design.experiment, rung, hold, MANUAL, commit=True)
        return True

    def unsettled_holds(self, before: float) -> list[Hold]:
        out = []
        for doc in self._ledger.find({"holds.at": {"$lt": before}},
                                     {"experiment": 1, "rung": 1, "holds": 1}):
            for h in doc.get("holds", []):
                if h["at"] < before:
                    job = JobDoc.objects(key=h["job"]).only("hold").first()
                    out.append(Hold(doc["experiment"], doc["rung"], h["key"], h["job"], h["at"],
                                    current=job is not None and job.hold == h["key"]))
        return out

    def settle_hold(self, hold: Hold, commit: bool) -> bool:
        job_id = MANUAL if hold.job_id.startswith(REPORT_PREFIX) else hold.job_id
        return self._release(hold.experiment, hold.rung, hold.key, job_id, commit)

    def queued_jobs(self, experiment: str, kind: int, rung: str, limit: int) -> list[job_pb2.Job]:
        filters = {"experiment": experiment, "kind": kind, "state": job_pb2.JOB_STATE_QUEUED}
        if rung:
            filters["rung"] = rung
        docs = JobDoc.objects(**filters).only("body").order_by("seq").limit(limit)
        return [job_pb2.Job.FromString(d.body) for d in docs]

    def expired_leases(self, now: float, limit: int = 500) -> list[job_pb2.Job]:
        docs = JobDoc.objects(state=job_pb2.JOB_STATE_LEASED, deadline__lt=now).only("body")
        return [job_pb2.Job.FromString(d.body) for d in docs.limit(limit)]

    def count_jobs(self, experiment: str, kind: int, states: tuple[int, ...]) -> int:
        return JobDoc.objects(experiment=experiment, kind=kind, state__in=list(states)).count()

    def verify_keys(self, experiment: str) -> set[tuple[str, str]]:
        docs = JobDoc.objects(experiment=experiment, kind=job_pb2.JOB_KIND_VERIFY,
                              state__ne=job_pb2.JOB_STATE_CANCELLED).only("design_id", "rung")
        return {(d.design_id, d.rung) for d in docs}

    # -- budget ledger ----------------------------------------------------------------
    def set_budget(self, experiment: str, rung: str, total: int) -> None:
        row = LedgerDoc.objects(experiment=experiment, rung=rung).first()
        if row is None:
            try:
                LedgerDoc(experiment=experiment, rung=rung, seq=self._next("ledger"),
                          total=total).save(force_insert=True)
            except NotUniqueError:
                return self.set_budget(experiment, rung, total)
        elif not LedgerDoc.objects(experiment=experiment, rung=rung,
                                   used__lte=total).update_one(set__total=total):
            raise FailedPrecondition(
                f"total {total} < {row.used} already reserved or committed at {rung}")
        self._entry(experiment, rung, budget_pb2.LEDGER_OP_SET, total, "")
        return None

    def budget(self, experiment: str) -> list[LedgerRow]:
        docs = LedgerDoc.objects(experiment=experiment).order_by("seq")
        return [LedgerRow(d.rung, d.total, d.reserved, d.committed) for d in docs]

    @property
    def _ledger(self):
        return LedgerDoc._get_collection()

    def _entry(self, experiment: str, rung: str, op: int, amount: int, job_id: str,
               key: str = "") -> None:
        fields = {"experiment": experiment, "rung": rung, "op": op, "amount": amount,
                  "job_id": job_id, "time": time.time()}
        if key:  # at most one entry per key, however often the move is retried
            LedgerEntryDoc._get_collection().update_one({"key": key}, {"$setOnInsert": fields},
                                                        upsert=True)
        else:
            LedgerEntryDoc(**fields).save()

    def _reserve(self, experiment: str, rung: str, limit: int, job_id: str) -> str:
        """The key of a new hold if a unit was reserved (reserved + committed < limit)."""
        key = secrets.token_hex(8)
        done = self._ledger.update_one(
            {"experiment": experiment, "rung": rung, "used": {"$lt": limit}},
            {"$inc": {"reserved": 1, "used": 1},
             "$push": {"holds": {"key": key, "job": job_id, "at": time.time()}}})
        if not done.modified_count:
            return ""
        self._entry(experiment, rung, budget_pb2.LEDGER_OP_RESERVE, 1, job_id)
        return key

    def _release(self, experiment: str, rung: str, key: str, job_id: str, commit: bool) -> bool:
        """Commit or refund the unit of one hold; False when the hold is already gone."""
        op = budget_pb2.LEDGER_OP_COMMIT if commit else budget_pb2.LEDGER_OP_REFUND
        if commit:  # the entry first: a crash after it leaves the hold, settled later
            self._entry(experiment, rung, op, 1, job_id, key=f"{key}:commit")
        done = self._ledger.update_one(
            {"experiment": experiment, "rung": rung, "holds.key": key},
            {"$pull": {"holds": {"key": key}},
             "$inc": {"reserved": -1, "committed": 1} if commit else {"reserved": -1, "used": -1}})
        if done.modified_count and not commit:
            self._entry(experiment, rung, op, 1, job_id)
        return bool(done.modified_count)

    def ledger_reserve(self, experiment: str, rung: str, limit: int, job_id: str) -> bool:
        return bool(self._reserve(experiment, rung, limit, job_id))

    def ledger_commit(self, experiment: str, rung: str, job_id: str) -> bool:
        return self._release_for(experiment, rung, job_id, commit=True)

    def ledger_refund(self, experiment: str, rung: str, job_id: str) -> bool:
        return self._release_for(experiment, rung, job_id, commit=False)

    def _release_for(self, experiment: str, rung: str, job_id: str, commit: bool) -> bool:
        doc = self._ledger.find_one({"experiment": experiment, "rung": rung,
                                     "holds.job": job_id}, {"holds": 1})
        key = next((h["key"] for h in (doc or {}).get("holds", []) if h["job"] == job_id), "")
        return bool(key) and self._release(experiment, rung, key, job_id, commit)

    def ledger_entries(self, experiment: str, limit: int = 100) -> list[budget_pb2.LedgerEntry]:
        entries = []
        for d in LedgerEntryDoc.objects(experiment=experiment).order_by("-time", "-id").limit(limit):
            entry = budget_pb2.LedgerEntry(experiment=experiment, rung=d.rung, op=d.op,
                                           amount=d.amount, job_id=d.job_id)
            entry.time.FromNanoseconds(int(d.time * 1e9))
            entries.append(entry)
        return entries

    # -- workers ----------------------------------------------------------------------
    def put_worker(self, worker: job_pb2.Worker) -> None:
        updated = WorkerDoc.objects(key=worker.id).update_one(set__body=worker.SerializeToString())
        if not updated:
            WorkerDoc(key=worker.id, seq=self._next("workers"),
                      body=worker.SerializeToString()).save()

    def get_worker(self, worker_id: str) -> job_pb2.Worker | None:
        doc = WorkerDoc.objects(key=worker_id).first()
        return job_pb2.Worker.FromString(doc.body) if doc else None

    def list_workers(self) -> list[job_pb2.Worker]:
        return [job_pb2.Worker.FromString(d.body) for d in WorkerDoc.objects.order_by("seq")]

    def delete_worker(self, worker_id: str) -> None:
        WorkerDoc.objects(key=worker_id).delete()

    # -- tokens -----------------------------------------------------------------------
    def insert_token(self, token: TokenRecord) -> None:
        try:
            TokenDoc(key=token.id, name=token.name, role=token.role,
                     secret_hash=token.secret_hash, created_at=token.created_at,
                     expires_at=token.expires_at, revoked=token.revoked).save(force_insert=True)
        except NotUniqueError:
            raise AlreadyExists(f"token name {token.name!r} already exists") from None

    def get_token(self, token_id: str) -> TokenRecord | None:
        doc = TokenDoc.objects(key=token_id).first()
        return _token(doc) if doc else None

    def list_tokens(self) -> list[TokenRecord]:
        return [_token(d) for d in TokenDoc.objects.order_by("created_at")]

    def revoke_token(self, id_or_name: str) -> TokenRecord | None:
        doc = TokenDoc.objects(key=id_or_name).first() or TokenDoc.objects(name=id_or_name).first()
        if doc is None:
            return None
        TokenDoc.objects(key=doc.key).update_one(set__revoked=True)
        return self.get_token(doc.key)

    # -- events -----------------------------------------------------------------------
    def append_events(self, events: list[design_pb2.Event]) -> None:
        EventDoc.objects.insert([EventDoc(seq=e.seq, experiment=e.experiment,
                                          body=e.SerializeToString()) for e in events],
                                load_bulk=False)

    def last_event_seq(self) -> int:
        last = EventDoc.objects.order_by("-seq").only("seq").first()
        return last.seq if last else 0

    def events_after(self, seq: int, experiment: str = "", limit: int = 1000) -> list[design_pb2.Event]:
        filters = {"seq__gt": seq}
        if experiment:
            filters["experiment"] = experiment
        docs = EventDoc.objects(**filters).order_by("seq").limit(limit)
        return [design_pb2.Event.FromString(d.body) for d in docs]


    def prune_events(self, keep: int) -> int:
        last = self.last_event_seq()
        return EventDoc.objects(seq__lte=last - keep).delete() if last > keep else 0


FULL = ("body", "fitness", "confidence", "quadrant", "fitness_stderr")
SUMMARY = ("summary", "fitness", "confidence", "quadrant", "fitness_stderr")


def _full(doc: DesignDoc) -> design_pb2.Design:
    return with_scores(doc.body, doc.fitness, doc.confidence, doc.quadrant, doc.fitness_stderr)


def _design_fields(d: design_pb2.Design) -> dict:
    return {"state": d.state, "quadrant": d.quadrant, "rungs": design_rungs(d),
            "fitness": d.fitness, "confidence": d.confidence, "fitness_stderr": d.fitness_stderr,
            "summary": basic_view(d).SerializeToString(), "body": d.SerializeToString()}


def _job_fields(job: job_pb2.Job) -> dict:
    return {"experiment": job.experiment, "kind": job.kind, "state": job.state,
            "worker_id": job.worker_id, "design_id": job.design_id, "rung": job.rung,
            "fencing": job.fencing_token, "deadline": deadline_of(job)}


def _token(doc: TokenDoc) -> TokenRecord:
    return TokenRecord(doc.key, doc.name, doc.role, doc.secret_hash, doc.created_at,
                       doc.expires_at or 0.0, bool(doc.revoked))

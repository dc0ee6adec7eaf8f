"""Bearer tokens with roles. A token is "<id>.<secret>"; only sha256(secret) is stored.

Roles: admin (everything), submitter (experiments, designs, cancels, reads), worker
(its own scheduler calls, design submission, reads). `POLICY` maps each RPC to the roles
allowed to call it; rpc.py enforces it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path

from genesys.v1 import auth_pb2

from .errors import NotFound, PermissionDenied, Unauthenticated
from .store import Store, TokenRecord

ADMIN, SUBMITTER, WORKER = auth_pb2.ROLE_ADMIN, auth_pb2.ROLE_SUBMITTER, auth_pb2.ROLE_WORKER
ANY = frozenset({ADMIN, SUBMITTER, WORKER})
WORKERS = frozenset({ADMIN, WORKER})
PEOPLE = frozenset({ADMIN, SUBMITTER})
AUTHORS = ANY
ADMINS = frozenset({ADMIN})

POLICY: dict[str, frozenset[int]] = {
    # EvolutionService
    "CreateExperiment": PEOPLE, "GetExperiment": ANY, "ListExperiments": ANY,
    "UpdateExperiment": ADMINS, "SubmitDesign": AUTHORS, "GetDesign": ANY, "ListDesigns": ANY,
    "GetLineage": ANY, "GetLeaderboard": ANY, "ReportResult": PEOPLE, "SelectParents": ANY,
    "Watch": ANY,
    # SchedulerService
    "RegisterWorker": WORKERS, "Heartbeat": WORKERS, "LeaseJob": WORKERS, "RenewLease": WORKERS,
    "ReportProgress": WORKERS, "CompleteJob": WORKERS, "FailJob": WORKERS, "ReleaseJob": WORKERS,
    "DeregisterWorker": WORKERS, "CancelJob": PEOPLE, "GetJob": ANY, "ListJobs": ANY,
    "ListWorkers": ANY, "EnqueueDesignJobs": PEOPLE,
    # BudgetService
    "GetBudget": ANY, "SetBudget": ADMINS,
    # AuthService
    "CreateToken": ADMINS, "RevokeToken": ADMINS, "ListTokens": ADMINS, "WhoAmI": ANY,
}
CACHE_SECONDS = 30.0


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Authenticator:
    def __init__(self, store: Store):
        self._store = store
        self._cache: dict[str, tuple[TokenRecord, float]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, role: int, ttl_seconds: float = 0) -> tuple[str, TokenRecord]:
        """A new token: the secret string (shown once) and its stored record."""
        if role not in ANY:
            raise ValueError("role must be admin, submitter or worker")
        token_id = "t" + secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        now = time.time()
        record = TokenRecord(token_id, name, role, _hash(secret), now,
                             now + ttl_seconds if ttl_seconds else 0.0)
        self._store.insert_token(record)
        return f"{token_id}.{secret}", record

    def revoke(self, id_or_name: str) -> TokenRecord:
        record = self._store.revoke_token(id_or_name)
        if record is None:
            raise NotFound(f"no token with id or name {id_or_name!r}")
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[0].id != record.id}
        return record

    def check(self, header: str | None, method: str) -> TokenRecord:
        """The caller's token for an `authorization` header value, or an error."""
        record = self._verify(header)
        if record.role not in POLICY.get(method, ADMINS):
            raise PermissionDenied(f"role {auth_pb2.Role.Name(record.role).removeprefix('ROLE_').lower()} "
                                   f"may not call {method}")
        return record

    def _verify(self, header: str | None) -> TokenRecord:
        if not header or not header.startswith("Bearer "):
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        token = header.removeprefix("Bearer ").strip()
        now = time.time()
        with self._lock:
            cached = self._cache.get(token)
        if cached and now - cached[1] < CACHE_SECONDS:
            record = cached[0]
        else:
            token_id, _, secret = token.partition(".")
            record = self._store.get_token(token_id)
            if record is None or not hmac.compare_digest(record.secret_hash, _hash(secret)):
                raise Unauthenticated("invalid token")
            with self._lock:
                self._cache[token] = (record, now)
        if record.revoked:
            raise Unauthenticated("token revoked")
        if record.expires_at and now >= record.expires_at:
            raise Unauthenticated("token expired")
        return record


def ensure_local_token(auth: Authenticator, store: Store, data_dir: Path) -> Path | None:
    """Embedded single-user mode: with no admin token yet, create one and write it to
    <data_dir>/token (mode 600). Returns the file written, if any."""
    if any(t.role == ADMIN and not t.revoked for t in store.list_tokens()):
        return None
    token, _ = auth.create(f"local-admin-{secrets.token_hex(3)}", ADMIN)
    path = data_dir / "token"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        out.write(token + "\n")
    return path

"""Bearer-token auth: tokens are listed in the gateway config by name, role and SHA-256 hash.

The gateway keeps its own small check instead of depending on the coordinator; the
metadata format is the usual `authorization: Bearer <token>`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from genesys.llm_gateway.config import AuthConfig


@dataclass(frozen=True)
class Identity:
    name: str
    role: str  # worker | admin

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ANONYMOUS_ADMIN = Identity(name="", role="admin")  # auth disabled: everyone may do everything


class AuthError(Exception):
    """Missing or unknown token."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class TokenAuth:
    def __init__(self, config: AuthConfig) -> None:
        self._enabled = config.enabled
        self._by_hash = {t.sha256.lower(): Identity(t.name, t.role) for t in config.tokens}

    def identify(self, metadata: dict[str, str]) -> Identity:
        """The identity behind the request's bearer token; raises AuthError."""
        if not self._enabled:
            return ANONYMOUS_ADMIN
        header = metadata.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing bearer token (metadata `authorization: Bearer <token>`)")
        digest = hash_token(token.strip())
        for known, identity in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return identity
        raise AuthError("unknown bearer token")

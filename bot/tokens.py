"""API bearer tokens: shown once, stored only as a SHA-256 hash, optionally scoped to one pilot
and optionally read-only (dashboards: every write answers 403).

Revocation is effective at once: every request verifies against the database, nothing is cached.
A revoked token keeps its row (the audit names it) under `<name>~revoked-<id>`, so its name can
be given to a new token; `~` is not allowed in names, so the kept row never collides.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.clock import Clock, SystemClock
from bot.errors import UserError
from bot.flag_cache import bump_local
from storage import repo
from storage.db import session_scope
from storage.models import ApiToken, AuditEvent, Pilot

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TOKEN_PREFIX = "pb_"
REVOKED_MARK = "~revoked-"
# Writing last_used_at on every request would turn every read into a write; once a minute is enough.
TOUCH_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    name: str
    pilot_slug: str | None  # None: every pilot
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    read_only: bool = False

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def may_access(self, slug: str) -> bool:
        return self.pilot_slug is None or self.pilot_slug == slug.lower()


class TokenService:
    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()

    def create(
        self, name: str, pilot_slug: str | None = None, by: str = "console:admin", read_only: bool = False
    ) -> tuple[str, TokenInfo]:
        """Returns (the secret, shown once, and its info). Raises UserError for a bad name or pilot."""
        if not NAME_RE.fullmatch(name):
            raise UserError(f"`{name[:60]}` is not a valid token name (1–100 of letters, digits, `.`, `_`, `-`).")
        now = self.clock.now()
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with session_scope(self.engine) as s:
            same = s.exec(select(ApiToken).where(ApiToken.name == name)).first()
            if same is not None and same.revoked_at is None:
                raise UserError(f"A token named `{name}` already exists; revoke it first or pick another name.")
            if same is not None:  # revoked: its row stays, under a name no new token can take
                same.name = f"{name}{REVOKED_MARK}{same.id}"
                s.add(same)
                s.flush()
            pilot: Pilot | None = None
            if pilot_slug is not None:
                pilot = repo.pilot_by_slug(s, pilot_slug.lower())
                if pilot is None:
                    raise UserError(f"No pilot `{pilot_slug[:60]}`; `status` lists them.")
            row = ApiToken(
                name=name,
                token_hash=hash_token(secret),
                pilot_id=pilot.id if pilot else None,
                created_at=now,
                read_only=read_only,
            )
            s.add(row)
            s.add(
                AuditEvent(
                    actor=by,
                    pilot_id=pilot.id if pilot else None,
                    action="token_create",
                    before=None,
                    after={"token": name, "pilot": pilot.slug if pilot else None, "read_only": read_only},
                    at=now,
                )
            )
            s.commit()
            return secret, TokenInfo(name, pilot.slug if pilot else None, now, read_only=read_only)

    def list(self) -> list[TokenInfo]:
        with session_scope(self.engine) as s:
            rows = s.exec(
                select(ApiToken, Pilot.slug).join(Pilot, ApiToken.pilot_id == Pilot.id, isouter=True)  # type: ignore[arg-type]
            ).all()
            return sorted(
                (TokenInfo(t.name, slug, t.created_at, t.revoked_at, t.last_used_at, t.read_only) for t, slug in rows),
                key=lambda t: t.name,
            )

    def revoke(self, name: str, by: str = "console:admin") -> TokenInfo:
        now = self.clock.now()
        with session_scope(self.engine) as s:
            row = s.exec(select(ApiToken).where(ApiToken.name == name)).first()
            if row is None:
                raise UserError(f"No token named `{name[:60]}`; `pilotbot token list` shows them.")
            if row.revoked_at is None:
                row.revoked_at = now
                s.add(row)
                s.add(
                    AuditEvent(
                        actor=by,
                        pilot_id=row.pilot_id,
                        action="token_revoke",
                        before=None,
                        after={"token": name},
                        at=now,
                    )
                )
                s.commit()
                bump_local()  # the OFREP routes of this process stop accepting it at once
            slug = s.get(Pilot, row.pilot_id).slug if row.pilot_id else None  # type: ignore[union-attr]
            return TokenInfo(row.name, slug, row.created_at, row.revoked_at, row.last_used_at, row.read_only)

    def verify(self, secret: str | None) -> TokenInfo | None:
        """The active token for this secret, or None (unknown, revoked or empty)."""
        if not secret or len(secret) > 200:
            return None
        digest = hash_token(secret)
        now = self.clock.now()
        with session_scope(self.engine) as s:
            row = s.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
            # compare_digest: the lookup is by hash already, this keeps the final check constant-time.
            if row is None or row.revoked_at is not None or not secrets.compare_digest(row.token_hash, digest):
                return None
            slug = None
            if row.pilot_id is not None:
                pilot = s.get(Pilot, row.pilot_id)
                if pilot is None:
                    return None
                slug = pilot.slug
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                row.last_used_at = now
                s.add(row)
                s.commit()
            return TokenInfo(row.name, slug, row.created_at, row.revoked_at, row.last_used_at, row.read_only)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()

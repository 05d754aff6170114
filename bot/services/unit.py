"""The unit of work every change runs in, and who may change a pilot.

`Services.change(actor, slug, action)` opens one session, finds the pilot ("did you mean" when it
does not exist), refuses an actor who may not change it, snapshots the audited fields before the
use case touches them, and on leaving the block writes the before/after audit event and commits.
A UserError raised inside the block leaves the block before the commit: nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.errors import NotFound, UserError
from bot.ports import Actor
from bot.scorecard import rescore
from storage import repo
from storage.db import session_scope
from storage.models import AuditEvent, Escalation, Pilot

Row = TypeVar("Row")


@dataclass
class Outcome:
    """What a write did, for the reply: a headline and any extra lines."""

    text: str
    lines: list[str] = field(default_factory=list)
    pilot: Pilot | None = None
    alerts: list[Escalation] = field(default_factory=list)


def snapshot(row: Any, *fields: str) -> dict[str, Any]:
    """The named fields of a row as JSON-ready values (dates as ISO text), for an audit event."""
    out: dict[str, Any] = {}
    for f in fields:
        v = getattr(row, f, None)
        out[f] = v.isoformat() if isinstance(v, date | datetime) else v
    return out


def mention_platform(actor: Actor, pilot: Pilot) -> str:
    """The platform a mentioned user or channel lives on: the actor's, except that an admin on the
    console editing a Slack or Teams pilot means that pilot's platform (the console cannot deliver)."""
    if actor.platform != "console":
        return actor.platform
    for platform in (pilot.owner_platform, pilot.escalation_platform):
        if platform and platform != "console":
            return platform
    return "console"


def find_pilot(session: Session, slug: str) -> Pilot:
    """The pilot, or NotFound saying which slug was meant or how to register it."""
    pilot = repo.pilot_by_slug(session, slug)
    if pilot is None:
        close = repo.close_slugs(session, slug)
        if close:
            raise NotFound(f"No pilot `{slug}`; did you mean `{close[0]}`?")
        raise NotFound(f"No pilot `{slug}`; `status` lists them, `new {slug} <name>` registers it.")
    return pilot


class UnitOfWork:
    """One change in one transaction: the session, who acts, on which pilot, at what time.

    `track(row, *fields)` names the audited fields (their values now are the event's `before`;
    at commit their values are its `after`); `audit(...)` adds an event right away, for rows
    that are only ever appended (a measurement, an eval run).
    """

    def __init__(
        self,
        session: Session,
        actor: Actor,
        action: str,
        now: datetime,
        pilot: Pilot | None,
        authorize: Callable[[], None] | None = None,
        grace: timedelta | None = None,
    ) -> None:
        self.session = session
        self.actor = actor
        self.action = action
        self.now = now
        self._pilot = pilot
        self._authorize = authorize
        self.grace = grace if grace is not None else timedelta(hours=48)
        self._tracked: tuple[Any, tuple[str, ...], dict[str, Any], dict[str, Any] | None] | None = None

    @property
    def pilot(self) -> Pilot:
        assert self._pilot is not None, "no pilot in this unit of work yet"
        return self._pilot

    @property
    def pilot_id(self) -> int:
        assert self.pilot.id is not None
        return self.pilot.id

    def track(self, row: Any | None, *fields: str, **context: Any) -> None:
        """Audit `fields` of `row` (None: a row this change creates; hand it to `save`)."""
        before = snapshot(row, *fields) if row is not None else None
        self._tracked = (row, fields, context, before)

    def save(self, row: Row) -> Row:
        """Adds a row; a tracked row that did not exist yet is this one."""
        self.session.add(row)
        if self._tracked is not None and self._tracked[0] is None:
            _, fields, context, before = self._tracked
            self._tracked = (row, fields, context, before)
        return row

    def created(self, pilot: Pilot) -> None:
        """The pilot this unit of work registered (flushed, so it has an id)."""
        self.session.add(pilot)
        self.session.flush()
        self._pilot = pilot

    def audit(self, before: dict[str, Any] | None, after: dict[str, Any] | None, action: str | None = None) -> None:
        self.session.add(
            AuditEvent(
                actor=self.actor.ref,
                pilot_id=self.pilot.id,
                action=action or self.action,
                before=before,
                after=after,
                at=self.now,
            )
        )

    def authorize(self) -> None:
        """Refuses (UserError) an actor who may not change this pilot; a unit never commits before
        it has asked. `change` asks on entry unless told to wait (the check-in answer validates its
        form first, so a mistyped field is pointed at before anything else)."""
        if self._authorize is not None:
            self._authorize()
            self._authorize = None

    def commit(self) -> None:
        # Programming errors, not user errors: raised even under `python -O`, and nothing is written.
        if self._authorize is not None:
            raise RuntimeError(f"{self.action}: committed without checking who may change the pilot")
        if self._tracked is not None:
            row, fields, context, before = self._tracked
            if row is None:
                raise RuntimeError(f"{self.action}: tracked a new row but never saved it")
            if row is self._pilot:
                self.pilot.updated_at = self.now
            self.session.add(row)
            self.audit(before, {**context, **snapshot(row, *fields)})
        if self._pilot is not None:  # the stored scorecard moves in the same transaction (bot/scorecard.py)
            rescore(self.session, self._pilot, self.now, self.grace)
        self.session.commit()


class ServiceBase:
    """What every use case shares: the engine, settings and clock, and the unit of work."""

    def __init__(self, engine: Engine, settings: Settings, clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock: Clock = clock or SystemClock()

    @property
    def grace(self) -> timedelta:
        return timedelta(hours=self.settings.pilotbot_checkin_grace_hours)

    def is_admin(self, actor: Actor) -> bool:
        return actor.ref in self.settings.admins

    @contextmanager
    def change(
        self, actor: Actor, slug: str, action: str, *pilot_fields: str, authorize_now: bool = True
    ) -> Iterator[UnitOfWork]:
        """A change to an existing pilot (see the module docstring); `pilot_fields` tracks them.

        `authorize_now=False` defers the permission check to `uow.authorize()`, which must run before
        the block ends (commit refuses otherwise)."""
        with session_scope(self.engine) as s:
            pilot = find_pilot(s, slug)
            uow = UnitOfWork(
                s, actor, action, self.clock.now(), pilot, lambda: self.may_change(pilot, actor), self.grace
            )
            if authorize_now:
                uow.authorize()
            if pilot_fields:
                uow.track(pilot, *pilot_fields)
            yield uow
            uow.commit()

    @contextmanager
    def unit(self, actor: Actor, action: str) -> Iterator[UnitOfWork]:
        """A change without a pilot to find first (registering one): commits on a clean exit."""
        with session_scope(self.engine) as s:
            uow = UnitOfWork(s, actor, action, self.clock.now(), None, grace=self.grace)
            yield uow
            uow.commit()

    @contextmanager
    def reading(self, slug: str) -> Iterator[tuple[Session, Pilot]]:
        """A read-only session and the named pilot (NotFound with "did you mean")."""
        with session_scope(self.engine) as s:
            yield s, find_pilot(s, slug)

    def may_change(self, pilot: Pilot, actor: Actor) -> None:
        """Refuses, saying who may, unless the actor owns the pilot, created an unowned one, or is admin."""
        if self.is_admin(actor):
            return
        if actor.platform == "api":
            # Only adapters/api builds an "api" actor, and only after verifying its bearer token and the
            # token's pilot scope (bot/tokens.py): the token itself is the authorisation, admin-like
            # within its scope. Chat surfaces never produce this platform.
            return
        if pilot.owner_id is not None:
            if (pilot.owner_platform, pilot.owner_id) == (actor.platform, actor.user_id):
                return
            raise UserError(
                f"Only the owner of `{pilot.slug}` (@{pilot.owner_name or pilot.owner_id}) or an admin can change it."
            )
        if pilot.created_by == actor.ref:
            return
        raise UserError(f"`{pilot.slug}` has no owner yet, so only its creator or an admin can change it.")

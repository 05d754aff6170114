"""The unit of work every change runs in, and who may change a pilot.

`Services.change(actor, slug, action)` opens one session, finds the pilot ("did you mean" when it
does not exist), refuses an actor who may not change it, snapshots the audited fields before the
use case touches them, and on leaving the block writes the before/after audit event and commits.
A UserError raised inside the block leaves the block before the commit: nothing is written.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from bot import limits
from bot.clock import Clock, SystemClock
from bot.config import ADMINS_EXAMPLE, Settings
from bot.errors import NotFound, UserError
from bot.ports import Actor
from bot.schedule.reopened import reopened
from bot.scorecard import rescore
from storage import outbox, repo
from storage.db import session_scope
from storage.models import AuditEvent, Escalation, Pilot

Row = TypeVar("Row")
P = ParamSpec("P")
R = TypeVar("R")
DeliverNow = Callable[[Sequence[int]], None]  # told the outbox ids a committed change created
log = logging.getLogger(__name__)


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
        sa.event.listen(session, "before_flush", _check_lengths)
        self.outbox: list[int] = []  # outbox rows this change created: delivered right after the commit

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
        """Adds a row; a tracked row that did not exist yet is this one. An outbox row (Escalation)
        goes in under its dedupe key at once (see `_enqueue`)."""
        if isinstance(row, Escalation):
            self._enqueue(row)
            return row
        self.session.add(row)
        if self._tracked is not None and self._tracked[0] is None:
            _, fields, context, before = self._tracked
            self._tracked = (row, fields, context, before)
        return row

    def _enqueue(self, esc: Escalation) -> None:
        """INSERT ... ON CONFLICT DO NOTHING on the dedupe key: when an earlier or concurrent change
        already raised the same notification (ten evals below the bar at once), this one adds nothing
        and sends nothing; so exactly once holds per key, not per change. A new row's id is kept for
        the deliver-now hook (`ServiceBase.deliver_now`)."""
        self.session.flush()  # the rows it refers to (the pilot, an eval run) exist first
        new_id = outbox.insert_ignore_id(self.session, Escalation, esc.model_dump(exclude={"id"}))
        if new_id is not None:
            esc.id = new_id
            self.outbox.append(new_id)

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
            moved = rescore(self.session, self._pilot, self.now, self.grace)
            # A production gap this change (or time, since the last tick) reopened: told once, under
            # the key the scheduler's rescore would use too (bot/schedule/reopened.py).
            for row in reopened(self.session, self._pilot, moved, self.now):
                self._enqueue(row)
        self.session.commit()


def _check_lengths(session: Session, _context: Any, _instances: Any) -> None:
    """Every new or changed row's text columns keep their one rule (bot/limits.py) before any flush:
    SQLite would store over-long text, PostgreSQL would raise, neither can store NUL."""
    for row in (*session.new, *session.dirty):
        limits.check_row(row)


def _lost_race(e: Exception) -> bool:
    if isinstance(e, IntegrityError):
        return True
    # SQLite refuses a second writer's lock upgrade at once instead of waiting (SQLITE_BUSY).
    return isinstance(e, OperationalError) and "locked" in str(e.orig)


def retried(method: Callable[P, R]) -> Callable[P, R]:
    """Runs a use case's unit of work once more when it lost a race on a unique key.

    Ten identical first-time writes at once all read "no row yet" and insert; all but one fail on
    the unique key (or, on SQLite, on the write lock). The second attempt sees the winner's row and
    updates it or refuses ("already exists"); a second loss is a clear refusal, never a traceback."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (IntegrityError, OperationalError) as e:
            if not _lost_race(e):
                raise
            log.info("%s lost a write race; running it once more", method.__name__)
        try:
            return method(*args, **kwargs)
        except (IntegrityError, OperationalError) as e:
            if not _lost_race(e):
                raise
            raise UserError("Someone changed the same thing at the same moment; send the command again.") from None

    return run


def become_admin(actor: Actor) -> str:
    """How one becomes an admin, with the actor's own entry to add (SPEC §10: PILOTBOT_ADMINS)."""
    return (
        f"Admins are listed in the PILOTBOT_ADMINS setting of the pilotbot server: whoever runs it can add "
        f"you there as `{actor.ref}` (entries are `<platform>:<user id>`, comma-separated, as in "
        f"`PILOTBOT_ADMINS={ADMINS_EXAMPLE}`)."
    )


class ServiceBase:
    """What every use case shares: the engine, settings and clock, and the unit of work."""

    def __init__(self, engine: Engine, settings: Settings, clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        # Post-commit hooks (bot.core.Core.deliver_now): the process's delivery sends the outbox rows
        # a change created right after its commit; the scheduler's tick stays the safety net.
        self.deliver_now: list[DeliverNow] = []

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
        self.committed(uow)

    @contextmanager
    def unit(self, actor: Actor, action: str) -> Iterator[UnitOfWork]:
        """A change without a pilot to find first (registering one): commits on a clean exit."""
        with session_scope(self.engine) as s:
            uow = UnitOfWork(s, actor, action, self.clock.now(), None, grace=self.grace)
            yield uow
            uow.commit()
        self.committed(uow)

    def committed(self, uow: UnitOfWork) -> None:
        """Hands the outbox rows of a committed change to the deliver-now hooks. A hook only starts
        the delivery (it never raises here): the change is done whatever the send does."""
        if not uow.outbox:
            return
        for hook in list(self.deliver_now):
            try:
                hook(list(uow.outbox))
            except Exception:  # the tick delivers it instead
                log.exception("deliver-now hook failed for outbox rows %s", uow.outbox)

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
                f"Only the owner of `{pilot.slug}` (@{pilot.owner_name or pilot.owner_id}) or an admin can change it. "
                + become_admin(actor)
            )
        if pilot.created_by == actor.ref:
            return
        raise UserError(
            f"`{pilot.slug}` has no owner yet, so only its creator or an admin can change it. " + become_admin(actor)
        )

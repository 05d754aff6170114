"""The kill switch (SPEC §9): one boolean flag per pilot, key = slug, served to production over OFREP.

`true` while the pilot's AI may run; `false` after `kill <slug> <reason>` (or retirement, which
forces it off whatever the column says). `restore <slug>` is always a person's decision. Changing it
is for the pilot's owner or an admin, audited in the same transaction.

Read evidence. Every evaluation records which token read which flag and when, so `kill` can say
whether production is listening and the `kill-switch` path item can show "wired" instead of a
ticked box. Writing that per request would turn the hottest read of the server into a write (and,
on SQLite, serialise every poll behind the write lock). So a read only sets `(token, pilot) -> time`
in an in-memory `ReadLog` (a dict assignment under a lock), and the server flushes the latest time
per key at most once every `FLUSH_EVERY` in one transaction (a SELECT plus at most three batched
statements, however many reads happened). An unscoped token's bulk read is one key (pilot None),
not one per pilot. The trade-off: a crash loses at most `FLUSH_EVERY` of evidence (only the time of
a read, never the answer the read got), and another replica sees a read up to `FLUSH_EVERY` late;
against the 24 h "wired" window and "last read 40 s ago" that is noise. Within this process,
`last_reads` merges the unflushed times so a `kill` right after a read still sees it.

Changes run in the shared unit of work (`Services.change`): it finds the pilot, checks who may
change it and commits; the flip, its audit event and the outbox row telling the owner and the
escalation channel (`flag_notice`) are one transaction. `turn_off` is the one way a flag goes off
(kill, retire, an eval run below `kill-below`), inside whichever transaction is running.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from bot.errors import UserError
from bot.flag_cache import FlagCache, note_local_change
from bot.gaps import fmt_pct
from bot.ports import Actor
from bot.schedule.alerts import alert_destinations
from bot.tokens import TOUCH_EVERY, TokenInfo, TokenService, hash_token
from storage import flags as store
from storage.flags import FlagRow
from storage.models import AuditEvent, Escalation, EscalationKind, EvalPolicy, EvalRun, Pilot, Stage

if TYPE_CHECKING:  # bot.services.evals calls `stop_below`: a runtime import would be circular
    from bot.services import Services
    from bot.services.unit import UnitOfWork

log = logging.getLogger(__name__)

FLUSH_EVERY = timedelta(seconds=10)
WIRED_WITHIN = timedelta(hours=24)
MAX_REASON = 500
NEVER_READ = "no production system has read this flag yet: turning it off changes nothing until one does"

Metadata = dict[str, str | int | float | bool]


@dataclass(frozen=True)
class Verdict:
    """One flag as OFREP serves it: value, reason (STATIC or DISABLED), variant and flat metadata."""

    key: str
    value: bool
    reason: str
    variant: str
    metadata: Metadata


def flag_verdict(row: FlagRow) -> Verdict:
    """The answer for one pilot's flag. Pure: the routes and the bench call it on rows they read."""
    meta: Metadata = {"stage": row.stage}
    if row.flag_changed_by is not None:
        meta["changedBy"] = row.flag_changed_by
    if row.flag_changed_at is not None:
        meta["changedAt"] = row.flag_changed_at.isoformat()
    if row.stage == Stage.retired.value:
        meta["reason"] = row.flag_reason or "retired"
        return Verdict(row.slug, False, "DISABLED", "off", meta)
    if not row.flag_on:
        meta["reason"] = row.flag_reason or "turned off"
        return Verdict(row.slug, False, "DISABLED", "off", meta)
    return Verdict(row.slug, True, "STATIC", "on", meta)


def etag_of(scope: str | None, state: Iterable[object]) -> str:
    """A strong ETag for the bulk answer from `storage.flags.bulk_state` or a scoped token's one row."""
    digest = hashlib.sha256(repr((scope, tuple(state))).encode("utf-8")).hexdigest()[:20]
    return f'"{digest}"'


def ago(delta: timedelta) -> str:
    """`40 s`, `2 min`, `3 h`, `2 days`."""
    secs = max(0, int(delta.total_seconds()))
    if secs < 60:
        return f"{secs} s"
    if secs < 3600:
        return f"{secs // 60} min"
    if secs < 86400:
        return f"{secs // 3600} h"
    days = secs // 86400
    return f"{days} day" if days == 1 else f"{days} days"


def read_line(reads: list[tuple[str, datetime]], now: datetime) -> str:
    """What a `kill`/`restore` reply says about production: the latest read, or a warning."""
    if not reads:
        return NEVER_READ
    name, at = reads[0]
    line = f"last read {ago(now - at)} ago by token `{name}`"
    if now - at > WIRED_WITHIN:
        line += ": nothing has read it in 24 h, so production may no longer be listening"
    return line


def wiring_line(reads: list[tuple[str, datetime]], now: datetime) -> str:
    """The `kill-switch` path item: "wired: read by `prod-support` 2 min ago", or "not wired"."""
    if not reads or now - reads[0][1] > WIRED_WITHIN:
        return "not wired"
    name, at = reads[0]
    return f"wired: read by `{name}` {ago(now - at)} ago"


class ReadLog:
    """The latest read time per (token name, pilot id or None for an unscoped bulk read), in memory.

    `record` runs on the event loop, `flush` in a worker thread: a lock guards the dict.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int | None], datetime] = {}
        self._lock = threading.Lock()

    def record(self, token_name: str, pilot_id: int | None, at: datetime) -> None:
        key = (token_name, pilot_id)
        with self._lock:
            prev = self._pending.get(key)
            if prev is None or at > prev:
                self._pending[key] = at

    def pending_for(self, pilot_id: int) -> list[tuple[str, datetime]]:
        with self._lock:
            return [(n, t) for (n, p), t in self._pending.items() if p is None or p == pilot_id]

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self, engine: Engine) -> int:
        """Write the pending times in one transaction; returns the statements run (0 when idle).
        On failure the times go back into the log for the next flush."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with engine.begin() as conn:
                return store.record_reads(conn, batch)
        except Exception:
            with self._lock:
                for (n, p), t in batch.items():
                    prev = self._pending.get((n, p))
                    if prev is None or t > prev:
                        self._pending[(n, p)] = t
            raise


@dataclass
class FlagChange:
    """What `kill`/`restore` did, for the reply and the alerts the chat layer sends."""

    text: str
    slug: str
    on: bool
    last_read: str
    pilot: Pilot
    lines: list[str] = field(default_factory=list)


class Flags:
    def __init__(self, services: Services, reads: ReadLog | None = None, tokens: TokenService | None = None) -> None:
        self.services = services
        self.engine = services.engine
        self.clock = services.clock
        self.reads = reads or ReadLog()
        self.tokens = tokens or TokenService(self.engine, self.clock)
        self.cache = FlagCache()

    # ---- production reads (OFREP) ----
    # The `cached_*` methods answer from memory on the event loop (None: ask the database, in a
    # worker thread, through the others, which refill the cache). bot/flag_cache.py says how stale.

    def cached_token(self, secret: str) -> TokenInfo | None:
        if not secret or len(secret) > 200:
            return None
        row = self.cache.token(hash_token(secret))
        if row is None or self._touch_due(row):
            return None
        return TokenInfo(row.name, row.pilot_slug, row.created_at, row.revoked_at, row.last_used_at)

    def cached_flag(self, slug: str) -> FlagRow | None:
        return self.cache.flag(slug)

    def cached_verdict(self, slug: str, token_name: str) -> Verdict | None:
        row = self.cache.flag(slug)
        if row is None:
            return None
        self.reads.record(token_name, row.id, self.clock.now())
        return flag_verdict(row)

    def _marks(self, conn: Connection) -> store.ChangeMarks | None:
        if not self.cache.fresh():
            self.cache.refresh(conn)
        return self.cache.marks

    def _touch_due(self, row: store.TokenRow) -> bool:
        return row.last_used_at is None or self.clock.now() - row.last_used_at >= TOUCH_EVERY

    def evaluate(self, slug: str, token_name: str, conn: Connection | None = None) -> Verdict | None:
        """One flag, None when no pilot has this key. Records the read in memory only."""
        if conn is None:
            with self.engine.connect() as own:
                return self.evaluate(slug, token_name, own)
        seen = self._marks(conn)
        row = store.flag_row(conn, slug)
        if row is None:
            return None
        self.cache.keep_flag(row, seen)
        self.reads.record(token_name, row.id, self.clock.now())
        return flag_verdict(row)

    def authorize(self, secret: str, conn: Connection | None = None) -> TokenInfo | None:
        """bot.tokens.TokenService.verify in one statement: the same rules (unknown, revoked or a scoped
        token whose pilot is gone -> None). When the token's `last_used_at` is due for its
        once-a-minute touch, verify itself runs; otherwise the row is kept for `cached_token`."""
        if not secret or len(secret) > 200:
            return None
        if conn is None:
            with self.engine.connect() as own:
                return self.authorize(secret, own)
        digest = hash_token(secret)
        seen = self._marks(conn)
        row = store.token_row(conn, digest)
        if row is None or row.revoked_at is not None or (row.pilot_id is not None and row.pilot_slug is None):
            return None
        if self._touch_due(row):
            return self.tokens.verify(secret)
        self.cache.keep_token(digest, row, seen)
        return TokenInfo(row.name, row.pilot_slug, row.created_at, row.revoked_at, row.last_used_at)

    def bulk_etag(self, scope: str | None, conn: Connection | None = None) -> str:
        if conn is None:
            with self.engine.connect() as own:
                return self._etag(own, scope)
        return self._etag(conn, scope)

    def _etag(self, conn: Connection, scope: str | None) -> str:
        if scope is None:
            return etag_of(None, store.bulk_state(conn))
        seen = self._marks(conn)
        row = store.flag_row(conn, scope)  # a scoped token's ETag moves only with its own pilot
        if row is not None:
            self.cache.keep_flag(row, seen)
        return etag_of(scope, (row.id, row.flag_version, row.flag_on, row.stage) if row else ())

    def evaluate_all(self, token_name: str, scope: str | None) -> tuple[str, list[Verdict]]:
        """(ETag, every flag the token may read). The ETag is read before the rows: a change in between
        leaves the ETag older than the body (the next poll fetches again), never a stale body current."""
        with self.engine.connect() as conn:
            etag = self._etag(conn, scope)
            rows = store.flag_rows(conn, scope)
        self.record_bulk(token_name, scope, rows)
        return etag, [flag_verdict(r) for r in rows]

    def record_bulk(self, token_name: str, scope: str | None, rows: list[FlagRow] | None = None) -> None:
        """A bulk read (also one answered 304): one key per token, never one per pilot."""
        now = self.clock.now()
        if scope is None:
            self.reads.record(token_name, None, now)
            return
        if rows is None:
            with self.engine.connect() as conn:
                row = store.flag_row(conn, scope)
            rows = [row] if row is not None else []
        for r in rows:
            self.reads.record(token_name, r.id, now)

    def flush_reads(self) -> int:
        return self.reads.flush(self.engine)

    def last_reads(self, pilot_id: int, conn: Connection | None = None) -> list[tuple[str, datetime]]:
        """Newest first, one entry per token: the stored evidence merged with this process's unflushed reads.
        `conn`: read on the caller's connection (a unit of work's), else on a connection of its own."""
        if conn is None:
            with self.engine.connect() as own:
                return self.last_reads(pilot_id, own)
        latest = dict(store.last_reads(conn, pilot_id, limit=20))
        for name, at in self.reads.pending_for(pilot_id):
            if name not in latest or at > latest[name]:
                latest[name] = at
        return sorted(latest.items(), key=lambda kv: kv[1], reverse=True)

    def wiring_on(self, conn: Connection, pilot_id: int) -> str:
        """The line the `kill-switch` path item shows, read on the caller's connection (`status
        <slug>` reads it beside the pilot's report: `Reads.pilot_report_and`)."""
        return wiring_line(self.last_reads(pilot_id, conn), self.clock.now())

    # ---- changes (owner or admin, audited, in the unit of work of bot/services) ----

    def kill(self, actor: Actor, slug: str, reason: str) -> FlagChange:
        reason = " ".join(reason.split())
        if not reason:
            raise UserError(f"Say why it goes off: `kill {slug} <reason>`, e.g. `kill {slug} wrong refunds quoted`.")
        if len(reason) > MAX_REASON:
            raise UserError(f"The reason is too long ({len(reason)} characters; {MAX_REASON} at most).")
        with self.services.change(actor, slug, "kill") as uow:
            pilot = uow.pilot
            if not pilot.flag_on or pilot.stage == Stage.retired.value:
                raise UserError(_already_off(pilot))
            line = read_line(self.last_reads(uow.pilot_id, uow.session.connection()), uow.now)
            turn_off(uow.session, pilot, actor.ref, reason, uow.now)
            notice = flag_notice(pilot, EscalationKind.flag_killed, actor, reason, line, uow.now)
            if notice is not None:
                uow.save(notice)
        text = f"Turned `{pilot.slug}` off in production: its flag now reads `false` (reason: {reason})."
        lines = [f"Production: {line}.", *_told(pilot), f"`restore {pilot.slug}` turns it back on."]
        return FlagChange(text, pilot.slug, False, line, pilot, lines)

    def restore(self, actor: Actor, slug: str) -> FlagChange:
        with self.services.change(actor, slug, "restore") as uow:
            pilot = uow.pilot
            if pilot.stage == Stage.retired.value:
                raise UserError(f"`{slug}` is retired, so its flag stays off; a retired pilot is not restored.")
            if pilot.flag_on:
                raise UserError(f"`{slug}` is already on in production; nothing to restore.")
            line = read_line(self.last_reads(uow.pilot_id, uow.session.connection()), uow.now)
            uow.track(pilot, "flag_on", "flag_reason")
            pilot.flag_on = True
            pilot.flag_reason = None
            _stamp(uow.session, pilot, actor.ref, uow.now)
            notice = flag_notice(pilot, EscalationKind.flag_restored, actor, None, line, uow.now)
            if notice is not None:
                uow.save(notice)
        text = f"Restored `{pilot.slug}` in production: its flag now reads `true`."
        return FlagChange(text, pilot.slug, True, line, pilot, [f"Production: {line}.", *_told(pilot)])


def _already_off(pilot: Pilot) -> str:
    if pilot.stage == Stage.retired.value:
        return f"`{pilot.slug}` is retired, so its flag is already off."
    when = f" since {pilot.flag_changed_at:%Y-%m-%d %H:%M} UTC" if pilot.flag_changed_at else ""
    by = f" by {pilot.flag_changed_by}" if pilot.flag_changed_by else ""
    return f"`{pilot.slug}` is already off{when}{by} ({pilot.flag_reason or 'no reason given'})."


def _told(pilot: Pilot) -> list[str]:
    """Who the notice goes to, for the reply (they are told at once, by the outbox row)."""
    who = []
    if pilot.owner_id:
        who.append(f"@{pilot.owner_name or pilot.owner_id}")
    if pilot.escalation_channel_id:
        who.append(f"#{pilot.escalation_channel_name or pilot.escalation_channel_id}")
    return [f"Telling {' and '.join(who)}."] if who else []


def flag_notice(
    pilot: Pilot, kind: EscalationKind, actor: Actor | None, reason: str | None, last_read: str, now: datetime
) -> Escalation | None:
    """The outbox row telling the owner and the escalation channel of a flip (None: nobody to tell).

    Keyed by the flip's generation (`flag_version`, unique across the portfolio): exactly once per flip.
    `actor` None is pilotbot itself (an eval run below `kill-below`)."""
    targets = [d.key for d in alert_destinations(pilot)]
    if not targets:
        return None
    facts: dict[str, Any] = {
        "actor_platform": actor.platform if actor else None,
        "actor_id": actor.user_id if actor else None,
        "actor_name": actor.display_name if actor else None,
        "reason": reason,
        "last_read": last_read,
        "automatic": actor is None,
    }
    return Escalation(
        pilot_id=pilot.id,
        kind=kind.value,
        dedupe_key=f"flag:{pilot.id}:{pilot.flag_version}",
        targets=targets,
        facts=facts,
        payload={},
        created_at=now,
    )


AUTOMATIC = "pilotbot"  # who turned a flag off when an eval run fell below `kill-below`


def stop_below(uow: UnitOfWork, policy: EvalPolicy | None, run: EvalRun, alerts: list[Escalation]) -> str | None:
    """`kill-below` (SPEC §9): an eval run below it turns the flag off in the run's own transaction.

    Exactly once: a flag already off (or a retired pilot) is left alone, and only `restore`, a person's
    decision, turns it back on. The run's eval alerts get `killed: true` so the page says so; with no
    alert to carry it, a `flag_killed` notice tells the owner and the escalation channel. Returns the
    line for the reply of whoever recorded the run (None when nothing was turned off)."""
    pilot = uow.pilot
    if policy is None or policy.kill_below is None or run.score >= policy.kill_below:
        return None
    if not pilot.flag_on or pilot.stage == Stage.retired.value:
        return None
    reason = f"eval {fmt_pct(run.score)} is below kill-below {fmt_pct(policy.kill_below)}"
    line = read_line(store.last_reads(uow.session.connection(), uow.pilot_id), uow.now)
    turn_off(uow.session, pilot, AUTOMATIC, reason, uow.now)
    for a in alerts:
        a.facts = {**(a.facts or {}), "killed": True, "kill_below": policy.kill_below}
    if not alerts and (notice := flag_notice(pilot, EscalationKind.flag_killed, None, reason, line, uow.now)):
        uow.save(notice)
    return (
        f"⛔ The kill switch turned `{pilot.slug}` off in production ({reason}); "
        f"`restore {pilot.slug}` turns it back on."
    )


def turn_off(s: Session, pilot: Pilot, actor_ref: str, reason: str, now: datetime) -> None:
    """Turn a flag off inside the caller's transaction (kill, retire, an eval run below `kill-below`);
    adds the audit event, never commits."""
    before = {"flag_on": pilot.flag_on, "reason": pilot.flag_reason}
    pilot.flag_on = False
    pilot.flag_reason = reason[:MAX_REASON]
    _stamp(s, pilot, actor_ref, now)
    s.add(pilot)
    _audit(s, actor_ref, pilot, "kill", before, {"flag_on": False, "reason": pilot.flag_reason}, now)


def _stamp(s: Session, pilot: Pilot, actor_ref: str, now: datetime) -> None:
    pilot.flag_changed_at = now
    pilot.flag_changed_by = actor_ref
    pilot.flag_version = store.bump_generation(s.connection())  # moves the bulk ETag
    pilot.updated_at = now
    note_local_change(s)


def _audit(
    s: Session, actor_ref: str, pilot: Pilot, action: str, before: dict[str, Any], after: dict[str, Any], now: datetime
) -> None:
    s.add(AuditEvent(actor=actor_ref, pilot_id=pilot.id, action=action, before=before, after=after, at=now))

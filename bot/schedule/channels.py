"""Escalation channels the bot cannot post to (a private Slack channel it was not invited to, a Teams
channel it was never mentioned in), told once per *episode* to whoever set `escalate`.

An episode is one `Escalation` row of kind `channel_unreachable`: it is the DM to the setter (or the
owner, when the setter cannot be messaged) and, while its `facts` have no `cleared_at`, the durable
fact "this pilot's escalation channel is unreachable" that `status <slug>` shows. It opens when a
channel post is refused for good (bot/schedule/deliver.py) or when `escalate` finds the channel
unreachable (the adapter checks where the platform lets it; the setter is told in the reply, so
that episode has no DM). It closes when a post to the channel gets through or `escalate` is set
again. Rows are never deleted: the episodes are the channel's history.

Exactly once per episode: the dedupe key names the episode before it (`channel_unreachable:<pilot>:
<id of the previous episode, 0 for the first>`), read in the same statement that finds no open one,
so two posts refused at the same moment compute the same key, open one episode and send one DM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.ports import Destination
from storage import outbox
from storage.models import AuditEvent, Escalation, EscalationKind, Pilot

log = logging.getLogger(__name__)

KIND = EscalationKind.channel_unreachable.value
PUSH_PLATFORMS = ("slack", "teams")


@dataclass(frozen=True)
class Refused:
    """A pilot's escalation channel while it is known to refuse posts, and the platform's answer."""

    channel: Destination
    reason: str | None = None


def refused(facts: dict[str, Any] | None, pilot: Any) -> Refused | None:
    """The open episode `facts` describe (the pilot's latest), if it is still open."""
    channel = current_channel(pilot)
    if channel is None or not is_open(facts, pilot):
        return None
    return Refused(channel, (facts or {}).get("reason"))


def current_channel(p: Any) -> Destination | None:
    """The pilot's escalation channel (a Pilot, or a row with its column names)."""
    if not p.escalation_channel_id or not p.escalation_platform:
        return None
    return Destination.channel(p.escalation_platform, p.escalation_channel_id, p.escalation_channel_name)


def is_open(facts: dict[str, Any] | None, pilot: Any) -> bool:
    """An episode's facts still describe the pilot's current escalation channel, not cleared."""
    channel = current_channel(pilot)
    if not facts or channel is None:
        return False
    return facts.get("channel") == channel.key and not facts.get("cleared_at")


def _episodes(pilot_id: int) -> Any:
    return select(Escalation).where(col(Escalation.pilot_id) == pilot_id, col(Escalation.kind) == KIND)


def _latest(s: Session, pilot_id: int) -> Escalation | None:
    return s.exec(_episodes(pilot_id).order_by(col(Escalation.id).desc()).limit(1)).first()


def open_episode(s: Session, pilot: Pilot) -> Escalation | None:
    assert pilot.id is not None
    latest = _latest(s, pilot.id)
    return latest if latest is not None and is_open(latest.facts, pilot) else None


def setter_of(s: Session, pilot: Pilot) -> Destination | None:
    """Who last ran `escalate` for the pilot (the audit log), if the bot can message them there;
    else the owner; else nobody."""
    assert pilot.id is not None
    actor = s.exec(
        select(col(AuditEvent.actor))
        .where(col(AuditEvent.pilot_id) == pilot.id, col(AuditEvent.action) == "escalate")
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(1)
    ).first()
    platform, _, user = str(actor or "").partition(":")
    if platform in PUSH_PLATFORMS and user:
        return Destination.user(platform, user)
    if pilot.owner_id and pilot.owner_platform in PUSH_PLATFORMS:
        return Destination.user(str(pilot.owner_platform), pilot.owner_id, pilot.owner_name)
    return None


def opened(
    s: Session, pilot: Pilot, channel: Destination, now: datetime, about: str | None, reason: str | None = None
) -> int | None:
    """The pilot's escalation channel refused a post for good. Opens an episode unless one is open
    (or `channel` is no longer the pilot's escalation channel); returns the new row's id when it
    has someone to tell. `about`: the kind of message refused; None when `escalate` itself found
    the channel unreachable and the setter was told in its reply (no DM)."""
    current = current_channel(pilot)
    if pilot.id is None or current is None or current.key != channel.key:
        log.info("%s refused a post but is not the escalation channel of pilot %s any more", channel.key, pilot.id)
        return None
    latest = _latest(s, pilot.id)  # one read: an open episode, or the one the new episode follows
    if latest is not None and is_open(latest.facts, pilot):
        return None
    told = setter_of(s, pilot) if about is not None else None
    facts = {"channel": current.key, "name": current.name or current.id, "about": about, "reason": reason}
    if about is None:
        facts["told"] = "escalate"
    elif told is None:
        log.warning("pilot %s: %s cannot be posted to and nobody can be told", pilot.slug, current.key)
    row = {
        "pilot_id": pilot.id,
        "kind": KIND,
        "dedupe_key": f"{KIND}:{pilot.id}:{latest.id if latest is not None else 0}",
        "targets": [told.key] if told else [],
        "facts": facts,
        "payload": {},
        "created_at": now,
        "sent_at": None if told else now,  # nobody to tell: nothing for the outbox to send
        "attempts": 0,
    }
    new_id = outbox.insert_ignore_id(s, Escalation, row)
    return new_id if told is not None else None


def cleared(s: Session, pilot_id: int, now: datetime, by: str, channel_key: str | None = None) -> bool:
    """Ends the pilot's open episodes (of `channel_key` only, when given): a post got through
    (`by="post"`) or `escalate` was set again (`by="escalate"`). The caller commits."""
    done = False
    for e in s.exec(_episodes(pilot_id)):
        facts = dict(e.facts or {})
        if facts.get("cleared_at") or (channel_key is not None and facts.get("channel") != channel_key):
            continue
        e.facts = {**facts, "cleared_at": now.isoformat(), "cleared_by": by}  # a new object: JSON is not tracked
        s.add(e)
        done = True
    return done

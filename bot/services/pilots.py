"""Use cases that change a pilot's own fields: register it, its owner, go-live, cadence, escalation."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from bot.commands import ChannelRef, UserRef
from bot.errors import UserError
from bot.ports import Actor, Destination
from bot.schedule import channels
from bot.services.unit import Outcome, ServiceBase, find_pilot, mention_platform, retried, snapshot
from storage import repo
from storage.db import session_scope
from storage.models import Pilot

OWNER = ("owner_platform", "owner_id", "owner_name")
CADENCE = ("checkin_weekday", "checkin_time", "checkin_tz")
ESCALATION = ("escalation_platform", "escalation_channel_id", "escalation_channel_name")


class PilotChanges(ServiceBase):
    @retried
    def new_pilot(self, actor: Actor, slug: str, name: str | None) -> Outcome:
        with self.unit(actor, "new") as uow:
            if repo.pilot_by_slug(uow.session, slug) is not None:
                raise UserError(f"A pilot `{slug}` already exists; `status {slug}` shows it, or pick another slug.")
            pilot = Pilot(
                slug=slug,
                name=name or slug.replace("-", " ").capitalize(),
                created_by=actor.ref,
                checkin_tz=self.settings.pilotbot_timezone,
                created_at=uow.now,
                updated_at=uow.now,
            )
            uow.created(pilot)
            uow.audit(None, snapshot(pilot, "slug", "name"))
        return Outcome(
            f"Registered `{slug}` ({pilot.name}).",
            [f"Next: `owner {slug} @someone`, then `baseline {slug} <metric> <value> <unit>`."],
            pilot,
        )

    def set_owner(self, actor: Actor, slug: str, user: UserRef, display_name: str | None = None) -> Outcome:
        with self.change(actor, slug, "owner", *OWNER) as uow:
            pilot = uow.pilot
            name = display_name or user.name or user.id
            platform = mention_platform(actor, pilot)
            if (pilot.owner_platform, pilot.owner_id) != (platform, user.id):
                pilot.owner_since = uow.now
            pilot.owner_platform, pilot.owner_id, pilot.owner_name = platform, user.id, name
        return Outcome(f"@{name} now owns `{slug}` and gets the weekly check-in.", pilot=pilot)

    def set_go_live(self, actor: Actor, slug: str, day: date) -> Outcome:
        today = self.clock.now().date()
        if day > today:
            raise UserError(
                f"Go-live cannot be in the future ({day.isoformat()}): record it on the day the AI is switched on, "
                f"as in `golive {slug} {today.isoformat()}`."
            )
        with self.change(actor, slug, "golive", "go_live") as uow:
            uow.pilot.go_live = day
        return Outcome(f"`{slug}` went live on {day.isoformat()}.", pilot=uow.pilot)

    def set_cadence(self, actor: Actor, slug: str, weekday: int, time: str, tz: str | None) -> Outcome:
        from bot.views import weekday_name

        with self.change(actor, slug, "checkin", *CADENCE) as uow:
            pilot = uow.pilot
            pilot.checkin_weekday, pilot.checkin_time = weekday, time
            pilot.checkin_tz = tz or pilot.checkin_tz
            ZoneInfo(pilot.checkin_tz)
        return Outcome(f"`{slug}` check-in: every {weekday_name(weekday)} at {time} {pilot.checkin_tz}.", pilot=pilot)

    def set_escalation(self, actor: Actor, slug: str, channel: ChannelRef) -> Outcome:
        with self.change(actor, slug, "escalate", *ESCALATION) as uow:
            pilot = uow.pilot
            pilot.escalation_platform = mention_platform(actor, pilot)
            pilot.escalation_channel_id = channel.id
            pilot.escalation_channel_name = channel.name or channel.id
            # A channel set again starts clean: the adapter checks it now where the platform lets
            # it, and the next refused post opens a new episode (bot/schedule/channels.py).
            channels.cleared(uow.session, uow.pilot_id, uow.now, "escalate")
        return Outcome(f"Escalations for `{slug}` go to #{pilot.escalation_channel_name}.", pilot=pilot)

    def escalation_unreachable(self, slug: str, channel: Destination, reason: str | None = None) -> None:
        """Right after `escalate`, the adapter found the channel unreachable and told the setter in its
        reply: `status` says so until a post gets through or `escalate` is set again (no DM follows)."""
        with session_scope(self.engine) as s:
            pilot = find_pilot(s, slug)
            channels.opened(s, pilot, channel, self.clock.now(), None, reason)
            s.commit()

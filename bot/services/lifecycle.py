"""Use cases that move a pilot through its stages (SPEC §8): ship, pause, resume, retire.

The rules are pure (bot/lifecycle.py, bot/gate.py); this module reads what they need inside the
unit of work, applies the returned `StageChange` to the pilot, audits it, and queues what the
change announces (the shipping notice) as an outbox row in the same transaction.
"""

from __future__ import annotations

from typing import Any

from bot import lifecycle
from bot.errors import UserError
from bot.flag_cache import note_local_change
from bot.gate import roi_lines
from bot.lifecycle import StageChange
from bot.ports import Actor
from bot.reports import pilot_gate
from bot.services.unit import Outcome, ServiceBase, UnitOfWork
from storage import flags as flag_store
from storage.models import Escalation, EscalationKind, Pilot, Stage

STAGE_FIELDS = ("stage",)


class LifecycleChanges(ServiceBase):
    def admin_like(self, actor: Actor) -> bool:
        """Admins, and API tokens (verified and scoped by adapters/api: admin-like within their scope)."""
        return self.is_admin(actor) or actor.platform == "api"

    def may_ship(self, pilot: Pilot, actor: Actor) -> None:
        """Only the owner or an admin ships (stricter than `may_change`: an unowned pilot's creator may not)."""
        if self.admin_like(actor) or (pilot.owner_platform, pilot.owner_id) == (actor.platform, actor.user_id):
            return
        who = f"its owner (@{pilot.owner_name or pilot.owner_id})" if pilot.owner_id else "its owner"
        raise UserError(f"Only {who} or an admin can ship `{pilot.slug}`.")

    def ship(self, actor: Actor, slug: str, override: str | None = None) -> Outcome:
        with self.change(actor, slug, "ship", authorize_now=False) as uow:
            pilot = uow.pilot
            self.may_ship(pilot, actor)
            uow.authorize()
            report, verdict = pilot_gate(uow.session, pilot, uow.now, self.grace)
            change = lifecycle.ship(slug, pilot.stage, verdict, override=override, admin=self.admin_like(actor))
            _apply(uow, change)
            if change.overridden:
                pilot.override_by = actor.ref
                pilot.override_reason = change.reason
                pilot.override_unmet = [u.sentence for u in change.overridden]
            else:
                pilot.override_by = pilot.override_reason = pilot.override_unmet = None
            roi = list(roi_lines(report.metrics))
            uow.save(_shipped_row(uow, pilot, roi, change))
        lines = [f"ROI: {'; '.join(roi) or 'no metric recorded'}."]
        if change.overridden:
            lines.append("Shipped past the gate by override: " + "; ".join(u.sentence for u in change.overridden) + ".")
        where = f"#{pilot.escalation_channel_name}" if pilot.escalation_channel_id else "the weekly digest"
        lines.append(f"Announced in {where}.")
        return Outcome(f"`{slug}` is in production.", lines, pilot)

    def pause(self, actor: Actor, slug: str, reason: str | None = None) -> Outcome:
        with self.change(actor, slug, "pause") as uow:
            change = lifecycle.pause(slug, uow.pilot.stage, reason)
            _apply(uow, change)
        why = f": {change.reason}" if change.reason else ""
        return Outcome(
            f"`{slug}` is paused{why}.",
            [f"No check-ins, reminders or alerts until `resume {slug}` (back to {change.before.value})."],
            uow.pilot,
        )

    def resume(self, actor: Actor, slug: str) -> Outcome:
        with self.change(actor, slug, "resume") as uow:
            change = lifecycle.resume(slug, uow.pilot.stage, uow.pilot.paused_from)
            _apply(uow, change)
        return Outcome(
            f"`{slug}` is back in {change.after.value}.",
            ["Check-ins continue from the next scheduled moment; missed weeks are not caught up."],
            uow.pilot,
        )

    def retire(self, actor: Actor, slug: str, reason: str | None = None) -> Outcome:
        from bot.flags import turn_off  # bot.flags imports the Services facade: import at call time

        with self.change(actor, slug, "retire") as uow:
            change = lifecycle.retire(slug, uow.pilot.stage, reason)
            _apply(uow, change)
            if change.flag_off:
                turn_off(uow.session, uow.pilot, actor.ref, change.reason or "retired", uow.now)
        return Outcome(
            f"`{slug}` is retired.",
            [
                "Its records stay (`status retired` lists it); it gets no check-ins, and its flag is off.",
            ],
            uow.pilot,
        )


def _apply(uow: UnitOfWork, change: StageChange) -> None:
    """Writes the stage change onto the pilot; the audit event carries `change.audit_after()`."""
    pilot = uow.pilot
    context = {k: v for k, v in change.audit_after().items() if k != "stage"}
    uow.track(pilot, *STAGE_FIELDS, **context)
    pilot.stage = change.after.value
    pilot.stage_changed_at, pilot.stage_changed_by = uow.now, uow.actor.ref
    pilot.paused_from = change.resume_to.value if change.resume_to is not None else None
    if change.after is Stage.paused or change.after is Stage.retired:
        pilot.stage_reason = change.reason
    else:
        pilot.stage_reason = None
    if change.transition is lifecycle.Transition.resume:
        pilot.resumed_at = uow.now
    # The stage is in every flag answer's metadata: move the bulk ETag and this process's flag cache.
    flag_store.bump_generation(uow.session.connection())
    note_local_change(uow.session)


def _shipped_row(uow: UnitOfWork, pilot: Pilot, roi: list[str], change: StageChange) -> Escalation:
    """The shipping announcement for the escalation channel (and the digest, which counts it)."""
    from bot.schedule.plan import escalation_channel

    channel = escalation_channel(pilot)
    actor = uow.actor
    facts: dict[str, Any] = {
        "roi": roi,
        "by_platform": actor.platform,
        "by_id": actor.user_id,
        "by_name": actor.display_name or actor.user_id,
        "override": change.reason if change.overridden else None,
        "unmet": [u.sentence for u in change.overridden],
    }
    return Escalation(
        pilot_id=uow.pilot_id,
        kind=EscalationKind.shipped.value,
        dedupe_key=f"shipped:{uow.pilot_id}:{uow.now.isoformat()}",
        targets=[channel.key] if channel else [],
        facts=facts,
        payload={},
        created_at=uow.now,
    )

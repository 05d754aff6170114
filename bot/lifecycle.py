"""The stage rules of SPEC §8 (ship, pause, resume, retire), what each stage gets from the
scheduler, and the portfolio header. Pure: the caller reads the pilot, calls one rule, and
writes the returned `StageChange` with its audit event; a refusal raises `UserError` (one
sentence) before anything is written.

    pilot ──ship──▶ production        (gate met, or an admin's override with a reason)
    pilot | production ──pause──▶ paused   (remembers the stage it came from)
    paused ──resume──▶ that stage     (no gate check: production was earned when it shipped)
    pilot | production | paused ──retire──▶ retired   (for good; records stay, flag off)

Decisions:
- `resume` of a pause with no remembered stage returns to `pilot`: the safe side, since
  reaching production again then goes through the gate.
- An override does not skip the stage rules: a paused or retired pilot cannot be shipped,
  override or not. An override on a pilot that meets the gate is a plain ship (nothing was
  overridden, so its status never says "shipped with an override").
- The portfolio header omits " · K in production" while K is 0, so a portfolio that never
  shipped reads exactly like §3's `1 of 3 pilots ready to ship (33%)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.errors import UserError
from bot.gaps import ready_line
from bot.gate import GateVerdict, Unmet, UnmetCode, refusal_sentence
from storage.models import Stage

ACTIVE_STAGES: frozenset[Stage] = frozenset({Stage.pilot, Stage.production})


class Transition(StrEnum):
    ship = "ship"
    pause = "pause"
    resume = "resume"
    retire = "retire"


@dataclass(frozen=True)
class StagePolicy:
    """What a stage gets from the scheduler and where it is counted."""

    checkins: bool  # the weekly check-in DM
    reminders: bool  # the 24 h reminder of an unanswered check-in
    escalations: bool  # the missed-review escalation (also for a check-in sent before a pause)
    alerts: bool  # eval alerts and, in production, the reopened-gap notice
    counted: bool  # in "N of M pilots ready to ship"
    listed: bool  # in the default portfolio (retired ones only under `status retired`)


_POLICIES: dict[Stage, StagePolicy] = {
    Stage.pilot: StagePolicy(True, True, True, True, counted=True, listed=True),
    Stage.production: StagePolicy(True, True, True, True, counted=True, listed=True),
    Stage.paused: StagePolicy(False, False, False, False, counted=False, listed=True),
    Stage.retired: StagePolicy(False, False, False, False, counted=False, listed=False),
}


def policy(stage: Stage | str) -> StagePolicy:
    return _POLICIES[Stage(stage)]


@dataclass(frozen=True)
class StageChange:
    transition: Transition
    before: Stage
    after: Stage
    # Set when `after` is paused: the stage `resume` returns to. None otherwise, so a resumed
    # or retired pilot carries no stale memory of an old pause.
    resume_to: Stage | None = None
    reason: str | None = None
    overridden: tuple[Unmet, ...] = ()  # the gate conditions an admin's override shipped past

    @property
    def override_codes(self) -> tuple[UnmetCode, ...]:
        return tuple(u.code for u in self.overridden)

    @property
    def flag_off(self) -> bool:
        """Retiring turns the pilot's flag off (§9); no other stage change touches it."""
        return self.after is Stage.retired

    def audit_after(self) -> dict[str, Any]:
        """The `after` of the audit event: the new stage and, for an override, what it skipped."""
        after: dict[str, Any] = {"stage": self.after.value}
        if self.resume_to is not None:
            after["resume_to"] = self.resume_to.value
        if self.reason is not None:
            after["reason"] = self.reason
        if self.overridden:
            after["override"] = [u.code.value for u in self.overridden]
            after["unmet"] = [u.sentence for u in self.overridden]
        return after


def _retired(slug: str, verb: str) -> UserError:
    return UserError(f"{slug} is retired: its records stay, but it cannot be {verb}.")


def _clean(reason: str | None) -> str | None:
    text = (reason or "").strip()
    return text or None


def ship(
    slug: str, stage: Stage | str, verdict: GateVerdict, *, override: str | None = None, admin: bool = False
) -> StageChange:
    """`ship <slug> [override <reason>]`: pilot -> production through the gate.

    `override` is the reason text when the command carried `override` (None otherwise);
    `admin` says whether the caller is an admin. Who may ship at all (owner or admin) is the
    services' permission rule, checked before this.
    """
    current = Stage(stage)
    if current is Stage.production:
        raise UserError(f"{slug} is already in production.")
    if current is Stage.paused:
        raise UserError(f"{slug} is paused: `resume {slug}` first, then `ship {slug}`.")
    if current is Stage.retired:
        raise _retired(slug, "shipped")
    reason = _clean(override)
    if override is not None and reason is None:
        raise UserError("An override needs a reason", f"ship {slug} override <reason>")
    if verdict.met:
        return StageChange(Transition.ship, current, Stage.production, reason=reason)
    if reason is None:
        raise UserError(refusal_sentence(slug, verdict, offer_override=admin))
    if not admin:
        raise UserError(f"Only an admin may use `ship {slug} override <reason>`, and {refusal_sentence(slug, verdict)}")
    return StageChange(Transition.ship, current, Stage.production, reason=reason, overridden=verdict.unmet)


def pause(slug: str, stage: Stage | str, reason: str | None = None) -> StageChange:
    """`pause <slug> [<reason>]`: no check-ins, reminders or alerts until `resume`."""
    current = Stage(stage)
    if current is Stage.paused:
        raise UserError(f"{slug} is already paused: `resume {slug}` to continue.")
    if current is Stage.retired:
        raise _retired(slug, "paused")
    return StageChange(Transition.pause, current, Stage.paused, resume_to=current, reason=_clean(reason))


def resume(slug: str, stage: Stage | str, paused_from: Stage | str | None) -> StageChange:
    """`resume <slug>`: back to the stage the pilot had before `pause`."""
    current = Stage(stage)
    if current is Stage.retired:
        raise _retired(slug, "resumed")
    if current is not Stage.paused:
        where = "it is in production" if current is Stage.production else "it is a running pilot"
        raise UserError(f"{slug} is not paused ({where}): there is nothing to resume.")
    target = Stage(paused_from) if paused_from is not None else Stage.pilot
    if target not in ACTIVE_STAGES:
        target = Stage.pilot
    return StageChange(Transition.resume, current, target)


def retire(slug: str, stage: Stage | str, reason: str | None = None) -> StageChange:
    """`retire <slug> [<reason>]`: the end, from any stage but retired."""
    current = Stage(stage)
    if current is Stage.retired:
        raise UserError(f"{slug} is already retired.")
    return StageChange(Transition.retire, current, Stage.retired, reason=_clean(reason))


def portfolio_line(pilots: Iterable[tuple[Stage | str, bool]]) -> str:
    """SPEC §8's header from (stage, four gaps closed) per pilot of the whole portfolio:
    `2 of 3 pilots ready to ship (67%) · 1 in production`; paused and retired are left out."""
    active = [(Stage(stage), ready) for stage, ready in pilots if Stage(stage) in ACTIVE_STAGES]
    shipped = sum(1 for stage, _ in active if stage is Stage.production)
    return portfolio_header(sum(1 for _, ready in active if ready), len(active), shipped)


def portfolio_header(ready: int, active: int, production: int) -> str:
    """`portfolio_line` from its three counts (the stored scorecard's aggregate): `ready` and
    `production` are among the `active` (pilot or production) pilots."""
    line = ready_line(ready, active)
    return f"{line} · {production} in production" if production else line

"""text + actor -> Reply for every surface: parse, call one service, build the reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from bot import commands as c
from bot.errors import UserError
from bot.flags import NEVER_READ, FlagChange, Flags
from bot.gaps import fmt_pct
from bot.ports import Actor
from bot.replies import Action, Reply, Series, Tone
from bot.services import Outcome, Services
from bot.views import (
    INTERNAL_ERROR,
    done_reply,
    error_reply,
    help_reply,
    portfolio_page_reply,
    status_reply,
    transition_phrase,
)

log = logging.getLogger(__name__)

# Adapters may resolve a mentioned user id to a display name (Slack users.info, Teams entities).
NameResolver = Callable[[str], str | None]
# Told of every handled command: (surface, command name, outcome "ok" | "refused" | "error", seconds).
Observer = Callable[[str, str, str, float], None]


class Router:
    def __init__(self, services: Services, flags: Flags | None = None) -> None:
        self.services = services
        self.flags = flags or Flags(services)  # bot.core shares one with the OFREP routes
        self.observers: list[Observer] = []

    def handle(self, text: str, actor: Actor, resolve_name: NameResolver | None = None) -> Reply:
        """Never raises: refused commands become one-sentence error replies."""
        started = time.perf_counter()
        name, outcome = "unknown", "ok"
        try:
            command = c.parse(text)
            name = type(command).__name__.lower()
            reply = self.execute(command, actor, resolve_name)
        except c.UnknownCommand as e:
            outcome, reply = "refused", error_reply(e.sentence, with_help=True)
        except UserError as e:
            outcome, reply = "refused", error_reply(e.sentence)
        except Exception:
            log.exception("command failed: %r by %s", text[:200], actor.ref)
            outcome = "error"
            reply = error_reply(INTERNAL_ERROR)
        self._observe(actor.platform, name, outcome, time.perf_counter() - started)
        return reply

    def _observe(self, surface: str, name: str, outcome: str, seconds: float) -> None:
        for observer in self.observers:
            try:
                observer(surface, name, outcome, seconds)
            except Exception:  # metrics must never break a command
                log.exception("command observer failed")

    def execute(self, cmd: c.Command, actor: Actor, resolve_name: NameResolver | None = None) -> Reply:
        s = self.services
        if isinstance(cmd, c.Help):
            return help_reply()
        if isinstance(cmd, c.Status):
            if cmd.slug is None:
                from bot.schedule.operator import with_delivery_warning  # undeliverable scheduled messages show here

                owner = actor.ref if cmd.filter == "mine" else None
                page = s.portfolio_page(cmd.filter, cmd.page, owner)
                if page.matching and page.page > page.pages:
                    last = " ".join(["status", *([cmd.filter] if cmd.filter else []), "page", str(page.pages)])
                    raise UserError(f"There is no page {page.page}; the last is {page.pages}: `{last}`.")
                return with_delivery_warning(portfolio_page_reply(page), s.engine)
            report, wiring = s.pilot_report_and(cmd.slug, self.flags.wiring_on)
            return status_reply(report, actor, wiring)
        if isinstance(cmd, c.History):
            return self.history(cmd.slug)
        if isinstance(cmd, c.Audit):
            return self.audit(cmd.slug)
        if isinstance(cmd, c.Cases):
            return self.cases(cmd.slug)
        if isinstance(cmd, c.New):
            return outcome_reply(s.new_pilot(actor, cmd.slug, cmd.name))
        if isinstance(cmd, c.SetOwner | c.Escalate):
            _require_resolved_mention(cmd, actor)
        if isinstance(cmd, c.SetOwner):
            name = resolve_name(cmd.user.id) if resolve_name else None
            return outcome_reply(s.set_owner(actor, cmd.slug, cmd.user, name))
        if isinstance(cmd, c.GoLive):
            return outcome_reply(s.set_go_live(actor, cmd.slug, cmd.day))
        if isinstance(cmd, c.Baseline):
            return outcome_reply(
                s.set_baseline(actor, cmd.slug, cmd.metric, cmd.value, cmd.unit, cmd.direction, cmd.at)
            )
        if isinstance(cmd, c.Measure):
            return outcome_reply(s.record_measurement(actor, cmd.slug, cmd.metric, cmd.value, cmd.unit))
        if isinstance(cmd, c.Threshold):
            out = s.set_threshold(actor, cmd.slug, cmd.pct, cmd.min_cases, cmd.drop_alert, cmd.kill_below)
            return outcome_reply(out, _fraction_note(cmd.read_as_fraction, cmd.pct))
        if isinstance(cmd, c.Eval):
            out = s.record_eval(actor, cmd.slug, cmd.score, cmd.cases, cmd.version)
            return outcome_reply(out, _fraction_note(cmd.read_as_fraction, cmd.score))
        if isinstance(cmd, c.Path):
            return outcome_reply(s.set_path(actor, cmd.slug, cmd.item, cmd.state, cmd.note))
        if isinstance(cmd, c.CheckinCadence):
            return outcome_reply(s.set_cadence(actor, cmd.slug, cmd.weekday, cmd.time, cmd.tz))
        if isinstance(cmd, c.Escalate):
            return outcome_reply(s.set_escalation(actor, cmd.slug, cmd.channel))
        if isinstance(cmd, c.Answer):
            return self.answer(cmd, actor)
        if isinstance(cmd, c.Kill):
            return flag_reply(self.flags.kill(actor, cmd.slug, cmd.reason))
        if isinstance(cmd, c.Restore):
            return flag_reply(self.flags.restore(actor, cmd.slug))
        lifecycle = self.lifecycle(cmd, actor)
        if lifecycle is not None:
            return lifecycle
        raise AssertionError(f"unhandled command {cmd!r}")

    def answer(self, cmd: c.Answer, actor: Actor) -> Reply:
        """The check-in answered in one line: the form's use case, its field errors as one sentence."""
        from bot.forms import EVAL_FIELD, TRIAGE_FIELD, FormErrors

        raw: dict[str, object] = dict(cmd.values)
        if cmd.eval_score is not None:
            raw[EVAL_FIELD] = cmd.eval_score
        if cmd.note is not None:
            raw[TRIAGE_FIELD] = cmd.note
        try:
            out = self.services.answer_checkin(actor, cmd.slug, raw)
        except FormErrors as e:
            raise UserError(answer_errors_sentence(cmd.slug, e.errors), c.USAGE["answer"]) from None
        return outcome_reply(out)

    def lifecycle(self, cmd: c.Command, actor: Actor) -> Reply | None:
        """The lifecycle and corrections of SPEC §8 (ship, pause, resume, retire, void)."""
        s = self.services
        if isinstance(cmd, c.Ship):
            return outcome_reply(s.ship(actor, cmd.slug, cmd.override))
        if isinstance(cmd, c.Pause):
            return outcome_reply(s.pause(actor, cmd.slug, cmd.reason))
        if isinstance(cmd, c.Resume):
            return outcome_reply(s.resume(actor, cmd.slug))
        if isinstance(cmd, c.Retire):
            return outcome_reply(s.retire(actor, cmd.slug, cmd.reason))
        if isinstance(cmd, c.Void):
            if cmd.what == "eval":
                return outcome_reply(s.void_eval(actor, cmd.slug, cmd.reason))
            assert cmd.metric is not None
            if cmd.what == "measure":
                return outcome_reply(s.void_measurement(actor, cmd.slug, cmd.metric, cmd.reason))
            return outcome_reply(s.void_baseline(actor, cmd.slug, cmd.metric, cmd.reason))
        return None

    def history(self, slug: str) -> Reply:
        pilot, evals, pol, metrics = self.services.history(slug)
        series = []
        lines = []
        live_evals = [e for e in evals if e.voided_at is None]
        if live_evals:
            ref = f"bar {fmt_pct(pol.threshold)}" if pol else None
            scores = tuple(e.score for e in live_evals)
            series.append(Series("eval score", scores, pol.threshold if pol else None, ref, "%"))
        else:
            lines.append("No eval runs yet.")
        live_metrics = [(m, vs) for m, vs in metrics if m.voided_at is None]
        for m, values in live_metrics:
            unit = m.unit if m.unit in ("%", "") else f" {m.unit}"
            live = tuple(v.value for v in values if v.voided_at is None)
            series.append(Series(m.key, live, m.baseline, f"baseline {m.baseline:g}{unit}", unit))
        if not live_metrics:
            lines.append("No metrics yet.")
        lines.extend(void_lines(evals, metrics))
        lines.extend(self.gap_changes(slug))
        return Reply(
            text=f"History of `{pilot.slug}` ({len(live_evals)} eval runs, oldest → newest):",
            series=tuple(series),
            lines=tuple(lines),
            actions=(Action("Status", command=f"status {pilot.slug}"),),
        )

    def cases(self, slug: str) -> Reply:
        """`cases <slug>`: flaky and always-failing cases (SPEC §10), the same on every surface."""
        from bot.evals.compare import history_lines

        pilot, hist = self.services.cases(slug)
        return Reply(
            text=f"Cases of `{pilot.slug}` over its last labelled eval runs:",
            lines=tuple(history_lines(hist)),
            actions=(
                Action("Status", command=f"status {pilot.slug}"),
                Action("History", command=f"history {pilot.slug}"),
            ),
        )

    def gap_changes(self, slug: str) -> list[str]:
        """When each gap closed or reopened (the stored transitions), newest first."""
        tz = ZoneInfo(self.services.settings.pilotbot_timezone)
        changes = [t for t in self.services.gap_history(slug) if t.from_state is not None]
        if not changes:
            return ["Gap changes: none recorded yet."]
        out = ["Gap changes, newest first:"]
        for t in changes[:20]:
            when = t.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            out.append(f"  {when}  {transition_phrase(t.gap, t.from_state, t.to_state)} ({t.code.replace('_', ' ')})")
        return out

    def audit(self, slug: str) -> Reply:
        pilot, events = self.services.audit_log(slug)
        tz = ZoneInfo(self.services.settings.pilotbot_timezone)
        lines = []
        for e in events:
            when = e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            change = ", ".join(f"{k}={v}" for k, v in (e.after or {}).items() if v is not None)
            lines.append(f"{when}  {e.actor}  {e.action}  {change}"[:300])
        if not lines:
            lines.append("No changes recorded yet.")
        return Reply(text=f"Last {len(events)} changes to `{pilot.slug}`, newest first:", lines=tuple(lines))


def void_lines(evals: list[Any], metrics: list[tuple[Any, list[Any]]]) -> list[str]:
    """`history`'s account of what was withdrawn (SPEC §8): each void record, who voided it and why."""

    def why(row: Any) -> str:
        reason = f": {row.void_reason}" if row.void_reason else ""
        return f"voided {row.voided_at.date().isoformat()} by {row.voided_by}{reason}"

    out = [
        f"void: eval {fmt_pct(e.score)} on {e.cases} cases of {e.run_at.date().isoformat()} ({why(e)})"
        for e in evals
        if e.voided_at is not None
    ]
    for m, values in metrics:
        if m.voided_at is not None:
            out.append(f"void: metric {m.key} (baseline {m.baseline:g} {m.unit}".rstrip() + f"; {why(m)})")
            continue
        out.extend(
            f"void: {m.key} {v.value:g} of {v.measured_at.date().isoformat()} ({why(v)})"
            for v in values
            if v.voided_at is not None
        )
    return out


def _require_resolved_mention(cmd: c.SetOwner | c.Escalate, actor: Actor) -> None:
    """On Slack and Teams a real mention arrives as an id; plain `@bob` text is a typo or an
    unresolved name, and storing it would make an owner nobody can act as."""
    ref = cmd.user if isinstance(cmd, c.SetOwner) else cmd.channel
    if not ref.bare or actor.platform == "console":
        return
    if isinstance(cmd, c.SetOwner):
        raise UserError(
            f"I could not tell who `@{ref.id}` is: pick the person from the @-mention list so the mention "
            f"resolves, as in `owner {cmd.slug} @Dana`."
        )
    raise UserError(
        f"I could not tell which channel `#{ref.id}` is: pick it from the #-channel list (on Teams, @-mention "
        f"the channel), as in `escalate {cmd.slug} #ai-pilots`."
    )


def answer_errors_sentence(slug: str, errors: dict[str, str]) -> str:
    """FormErrors of a one-line answer -> one sentence: which metrics are missing, what is wrong."""
    missing = [k for k, v in errors.items() if v.startswith("Enter this week's")]
    wrong = [v.rstrip(".") for k, v in errors.items() if k not in missing]
    parts = []
    if missing:
        parts.append(f"The check-in of `{slug}` also needs {', '.join(missing)}")
    parts.extend(wrong)
    return "; ".join(parts)


def _fraction_note(fraction: bool, pct: float) -> str | None:
    return f"(I read that as a fraction: {fmt_pct(pct)}.)" if fraction else None


def outcome_reply(out: Outcome, note: str | None = None) -> Reply:
    """The reply to any write: headline, extra lines, a Status action; a warning tone when it raised alerts."""
    lines = list(out.lines)
    if note:
        lines.insert(0, note)
    actions: tuple[Action, ...] = ()
    if out.pilot is not None:
        actions = (Action("Status", command=f"status {out.pilot.slug}"),)
    tone = Tone.warning if out.alerts else Tone.success
    reply = done_reply(out.text, *lines, actions=actions)
    return Reply(text=reply.text, tone=tone, lines=reply.lines, actions=reply.actions)


def flag_reply(change: FlagChange) -> Reply:
    """`kill`/`restore`: what the flag reads now and when production last read it; a warning tone when
    nothing ever has (the flip changes nothing until a production system reads it)."""
    tone = Tone.warning if change.last_read == NEVER_READ else Tone.success
    actions = (Action("Status", command=f"status {change.slug}"),)
    return Reply(text=change.text, tone=tone, lines=tuple(change.lines), actions=actions)

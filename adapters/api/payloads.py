"""JSON in and out for the REST API: validated request bodies and report documents.

Inbound values go through the same parse helpers as the chat grammar (bot/commands.py), so a
score, a case count or a metric key is accepted or refused by the same rules on every surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot import commands as c
from bot import limits
from bot.errors import UserError
from bot.evals.compare import CaseHistory, Flips, flips_text, history_lines
from bot.evalscore import EvalScore
from bot.gaps import improvement, verdict
from bot.gate import GateVerdict
from bot.lifecycle import portfolio_line
from bot.replies import READY
from bot.reports import PilotReport, PortfolioEntry, PortfolioPage
from bot.schedule.messages import eval_headline
from bot.scorecard import WeekCount
from bot.services import Outcome
from bot.services.evals import EvalOutcome
from bot.views import next_step, owner_label
from storage.cases import CaseResult


class BadInput(UserError):
    """A body field is missing, of the wrong type, or out of range (HTTP 422)."""


@dataclass(frozen=True)
class EvalBody:
    score: float
    cases: int
    version: str | None
    read_as_fraction: bool


@dataclass(frozen=True)
class MeasurementBody:
    metric: str
    value: float
    unit: str | None


def _json_number(value: Any, field: str) -> c.Number:
    """A JSON number, or a string like "96.2%", for the grammar's one number parser."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadInput(f"`{field}` must be a number.")
    return value.strip() if isinstance(value, str) else value


def _unexpected(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    extra = [k for k in body if k not in allowed]
    if extra:
        raise BadInput(f"Unexpected field `{str(extra[0])[:40]}`; allowed: {', '.join(allowed)}.")


def _text(value: str, table: str, column: str, name: str) -> str:
    """A text field under its one length rule (bot/limits.py: the column's length, no NUL, no
    lone surrogate), refused as HTTP 422 naming the field."""
    try:
        return limits.text(value, table, column, f"`{name}`")
    except UserError as e:
        raise BadInput(e.message) from None


def _plain(e: UserError) -> BadInput:
    # The chat usage line (`write eval <slug> ...`) means nothing to an API client: keep the sentence.
    return BadInput(e.message.rstrip(".") + ".")


def eval_body(body: dict[str, Any]) -> EvalBody:
    _unexpected(body, ("score", "cases", "version"))
    if "score" not in body:
        raise BadInput("`score` is missing (a percentage, e.g. 96.2).")
    if "cases" not in body:
        raise BadInput("`cases` is missing (how many labelled cases the eval scored).")
    try:
        score, fraction = c.parse_pct(_json_number(body["score"], "score"), "eval", "score")
        raw_cases = body["cases"]
        if isinstance(raw_cases, bool) or not isinstance(raw_cases, int):
            raise BadInput("`cases` must be a whole number.")
        cases = c.parse_int(raw_cases, "eval", "number of cases")
    except BadInput:
        raise
    except UserError as e:
        raise _plain(e) from None
    version = body.get("version")
    if version is not None:
        if not isinstance(version, str):
            raise BadInput("`version` must be a string.")
        version = version.strip() or None
        if version is not None:
            _text(version, "eval_run", "version", "version")
    return EvalBody(score, cases, version, fraction)


def version_of(raw: str) -> str:
    """An eval version from the query string (`POST …/evals/cases?version=`)."""
    return _text(raw, "eval_run", "version", "version")


def measurement_body(body: dict[str, Any]) -> MeasurementBody:
    _unexpected(body, ("metric", "value", "unit"))
    metric, value = body.get("metric"), body.get("value")
    if not isinstance(metric, str):
        raise BadInput("`metric` is missing or not a string (a metric key such as handle_time).")
    _text(metric, "metric", "key", "metric")
    if "value" not in body:
        raise BadInput("`value` is missing (a number, e.g. 9).")
    unit = body.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise BadInput(f"`unit` must be a string of at most {c.MAX_UNIT} characters.")
    if unit is not None:
        _text(unit, "metric", "unit", "unit")
    try:
        key = c.parse_metric(metric, "measure")
        number, attached = c.parse_value(_json_number(value, "value"), "measure")
    except BadInput:
        raise
    except UserError as e:
        raise _plain(e) from None
    return MeasurementBody(key, number, (unit.strip() or None) if unit else attached)


def text_field(body: dict[str, Any], field: str, allowed: tuple[str, ...]) -> str | None:
    """The optional text field of a lifecycle or void body (`override`, `reason`): 500 characters at most."""
    _unexpected(body, allowed)
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"`{field}` must be a string.")
    if len(value) > 500:
        raise BadInput(f"`{field}` is too long (500 characters at most).")
    return value


def slug_of(raw: str) -> str | None:
    slug = raw.lower()
    return slug if c.SLUG_RE.fullmatch(slug) else None


# ---- documents ----


def _iso(v: date | datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def gaps_doc(results: Any) -> list[dict[str, str]]:
    return [{"gap": r.gap.value, "label": r.gap.label, "state": r.state.value, "reason": r.reason} for r in results]


def pilot_entry_doc(e: PortfolioEntry) -> dict[str, Any]:
    """One pilot's row of a portfolio answer (the list page and a one-pilot token's list alike)."""
    p = e.pilot
    first = next((r for r in e.gaps.results if r.state.value != "closed"), None)
    return {
        "slug": p.slug,
        "name": p.name,
        "stage": p.stage,
        "owner": owner_label(p.owner_platform, p.owner_id, p.owner_name),
        "ready": e.gaps.ready,
        "gaps": gaps_doc(e.gaps.results),
        "next_step": next_step(p.slug, first, short=True) if first else READY,
    }


def portfolio_doc(entries: list[PortfolioEntry]) -> dict[str, Any]:
    ready = sum(1 for e in entries if e.gaps.ready)
    pilots = [pilot_entry_doc(e) for e in sorted(entries, key=lambda e: e.pilot.slug)]
    summary = portfolio_line((e.pilot.stage, e.gaps.ready) for e in entries)
    return {"summary": summary, "ready": ready, "total": len(entries), "pilots": pilots}


def report_doc(report: PilotReport) -> dict[str, Any]:
    p = report.pilot
    pol = report.policy
    latest = report.evals[0] if report.evals else None
    return {
        "slug": p.slug,
        "name": p.name,
        "stage": p.stage,
        "go_live": _iso(p.go_live),
        "owner": (
            {"platform": p.owner_platform, "id": p.owner_id, "name": p.owner_name} if p.owner_id is not None else None
        ),
        "escalation_channel": (
            {"platform": p.escalation_platform, "id": p.escalation_channel_id, "name": p.escalation_channel_name}
            if p.escalation_channel_id
            else None
        ),
        "ready": report.gaps.ready,
        "gaps": gaps_doc(report.gaps.results),
        "metrics": [
            {
                "key": m.key,
                "unit": m.unit,
                "direction": m.direction,
                "baseline": m.baseline,
                "baseline_at": _iso(m.baseline_at),
                "latest": m.latest,
                "latest_at": _iso(m.latest_at),
                "improvement": improvement(m),
                "verdict": verdict(m),
            }
            for m in report.metrics
        ],
        "eval_policy": (
            {"threshold": pol.threshold, "min_cases": pol.min_cases, "drop_alert": pol.drop_alert} if pol else None
        ),
        "latest_eval": (
            {
                "score": latest.score,
                "cases": latest.cases,
                "version": latest.version,
                "run_at": _iso(latest.run_at),
                "source": latest.source,
                "field_scores": latest.field_scores,
                "clears_bar": (latest.score >= pol.threshold) if pol else None,
            }
            if latest
            else None
        ),
        "path": [{"item": i.item, "state": i.state, "note": i.note} for i in report.path],
        "next_steps": [next_step(p.slug, r) for r in report.gaps.results if r.state.value != "closed"],
        "gate": gate_doc(report.gate) if report.gate is not None else None,
        "override": (
            {"by": p.override_by, "reason": p.override_reason, "unmet": list(p.override_unmet or [])}
            if p.stage == "production" and p.override_by
            else None
        ),
    }


def gate_doc(verdict: GateVerdict) -> dict[str, Any]:
    return {"met": verdict.met, "unmet": [{"code": u.code.value, "sentence": u.sentence} for u in verdict.unmet]}


def outcome_doc(out: Outcome) -> dict[str, Any]:
    return {
        "message": out.text,
        "lines": list(out.lines),
        "alerts": [eval_headline(out.pilot.slug if out.pilot else "?", a.kind, a.facts or {}) for a in out.alerts],
    }


def _case_doc(r: CaseResult) -> dict[str, Any]:
    return {"id": r.id, "failing_fields": list(r.failing)}


def flips_doc(f: Flips | None) -> dict[str, Any] | None:
    """The cases that flipped against the previous labelled run (first 10 of each, and totals)."""
    if f is None:
        return None
    return {
        "compared": f.compared,
        "regressed": [_case_doc(r) for r in f.regressed],
        "regressed_total": f.regressed_total,
        "fixed": [_case_doc(r) for r in f.fixed],
        "fixed_total": f.fixed_total,
        "text": flips_text(f),
    }


def eval_outcome_doc(out: EvalOutcome) -> dict[str, Any]:
    """An eval route's answer: the outcome, the CI gate, and the flips of a labelled run."""
    gate = out.gate.as_doc() if out.gate is not None else {"passed": False, "reasons": []}
    return {**outcome_doc(out), "gate": gate, "flips": flips_doc(out.flips)}


def cases_doc(slug: str, h: CaseHistory) -> dict[str, Any]:
    """`GET /pilots/{slug}/cases`: flaky and always-failing cases of the last labelled runs."""
    return {
        "pilot": slug,
        "runs": h.runs,
        "flaky": [{"id": c.id, "changes": c.changes, "runs": c.runs, "passed_last": c.passed_last} for c in h.flaky],
        "always_failing": list(h.always_failing),
        "lines": history_lines(h),
    }


def scored_doc(score: EvalScore) -> dict[str, Any]:
    return {
        "score": score.score,
        "cases": score.cases,
        "passed": score.passed,
        "field_accuracy": score.field_accuracy,
        "failing_total": score.failing_total,
        "failing": [
            {
                "id": f.id,
                "line": f.line,
                "misses": [{"field": m.field, "expected": m.expected, "actual": m.actual} for m in f.misses],
            }
            for f in score.failing
        ],
    }


def portfolio_page_doc(page: PortfolioPage) -> dict[str, Any]:
    """One page of the stored portfolio, riskiest first; `ready`/`total` cover every active pilot."""
    from bot.views import header_line

    counts = page.counts
    pilots = [pilot_entry_doc(e) for e in page.entries]
    return {
        "summary": header_line(counts),
        "ready": counts.ready,
        "total": counts.active,
        "production": counts.production,
        "page": page.page,
        "pages": page.pages,
        "matching": page.matching,
        "pilots": pilots,
    }


def trend_doc(weeks: list[WeekCount]) -> dict[str, Any]:
    return {"weeks": [{"week": w.week, "ready": w.ready, "closed": dict(w.closed)} for w in weeks]}

"""The App Home / personal overview: the viewer's own pilots first, then the whole portfolio."""

from __future__ import annotations

from collections.abc import Sequence

from bot.gaps import GapState
from bot.replies import READY, Reply
from bot.reports import PortfolioEntry, PortfolioPage
from bot.views import next_step, portfolio_page_reply, portfolio_reply
from storage.models import Stage

HOME_PAGE = 60  # portfolio rows on the home tab; the rest is counted as "and N more"
MAX_OWN = 40


def own_pilot_lines(entries: Sequence[PortfolioEntry], presorted: bool = False) -> list[str]:
    lines = []
    ordered = list(entries) if presorted else sorted(entries, key=lambda e: (e.gaps.ready, e.pilot.slug))
    for e in ordered[:MAX_OWN]:
        p = e.pilot
        steps = [next_step(p.slug, r) for r in e.gaps.results if r.state is not GapState.closed]
        todo = READY if not steps else "; ".join(steps)
        lines.append(f"{p.name} ({p.slug}): {todo}")
    if len(entries) > MAX_OWN:
        lines.append(f"… and {len(entries) - MAX_OWN} more of your pilots.")
    return lines


def home_replies(entries: Sequence[PortfolioEntry], platform: str, user_id: str) -> list[Reply]:
    mine = [e for e in entries if e.pilot.owner_platform == platform and e.pilot.owner_id == user_id]
    if mine:
        ready = sum(1 for e in mine if e.gaps.ready)
        first = Reply(
            text=f"Your pilots: {len(mine)} ({ready} ready to ship). What to do next:",
            lines=tuple(own_pilot_lines(mine)),
        )
    else:
        first = Reply(text="You own no pilots yet. `owner <slug> @you` makes you the accountable owner of one.")
    everyone = portfolio_reply(entries, page=HOME_PAGE)
    out = [first]
    shipped = sorted((e for e in entries if e.pilot.stage == Stage.production.value), key=lambda e: e.pilot.slug)
    if shipped:
        out.append(Reply(text=f"In production ({len(shipped)}):", lines=tuple(shipped_lines(shipped))))
    return [*out, Reply(text="All pilots", portfolio=everyone.portfolio)]


def shipped_lines(entries: Sequence[PortfolioEntry]) -> list[str]:
    """The App Home's section of shipped pilots (SPEC §8): each with whether its gaps still hold."""
    lines = []
    for e in entries[:MAX_OWN]:
        p = e.pilot
        open_gaps = [r.gap.label.lower() for r in e.gaps.results if r.state is not GapState.closed]
        state = "all four gaps closed" if not open_gaps else "reopened: " + ", ".join(open_gaps)
        lines.append(f"{p.name} ({p.slug}): {state}")
    if len(entries) > MAX_OWN:
        lines.append(f"… and {len(entries) - MAX_OWN} more in production.")
    return lines


def home_from_pages(
    mine: PortfolioPage, everyone: PortfolioPage, production: PortfolioPage | None = None
) -> list[Reply]:
    """App Home from the stored scorecard: the viewer's pilots (riskiest first), then the riskiest
    of the portfolio; two bounded pages, whatever the portfolio's size."""
    own = list(mine.entries)
    if own:
        lines = own_pilot_lines(own, presorted=True)
        if mine.matching > len(own):
            lines.append(f"… and {mine.matching - len(own)} more of your pilots: `status mine page 2`.")
        first = Reply(text=f"Your pilots: {mine.matching}. What to do next:", lines=tuple(lines))
    else:
        first = Reply(text="You own no pilots yet. `owner <slug> @you` makes you the accountable owner of one.")
    out = [first]
    if production is not None and production.matching:
        shipped = tuple(shipped_lines(production.entries))
        out.append(Reply(text=f"In production ({production.matching}):", lines=shipped))
    return [*out, Reply(text="Riskiest pilots", portfolio=portfolio_page_reply(everyone).portfolio)]

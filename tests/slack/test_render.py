"""The Block Kit renderer stays inside Slack's limits for any input (checked with slack_sdk's models)."""

from __future__ import annotations

import json

from adapters.slack.render import (
    MAX_VIEW_BLOCKS,
    ActionId,
    checkin_modal,
    escape,
    fallback_text,
    home_view,
    message,
    modal_errors,
    reply_blocks,
)
from bot.forms import build_checkin_form
from bot.gaps import Gap, GapReport, GapResult, GapState, Reason
from bot.home import home_replies
from bot.replies import Action, GapCard, GapRow, MetricLine, Portfolio, PortfolioRow, Reply, Series, Tone
from bot.reports import PortfolioEntry
from bot.views import checkin_action, help_reply, portfolio_reply
from storage.models import Pilot
from tests.slack.payloads import assert_valid_blocks, assert_valid_view

LONG = "Extraordinarily long pilot name " * 20  # 640 chars
STATES = (GapState.closed, GapState.at_risk, GapState.open, GapState.open)


def card(metrics: int = 2, name: str = "Support reply drafts", steps: int = 3) -> GapCard:
    return GapCard(
        slug="support-drafts",
        name=name,
        stage="pilot",
        ready=False,
        gaps=tuple(GapRow(g, s, f"reason for {g.value} " + "x" * 900) for g, s in zip(Gap, STATES, strict=True)),
        owner="@" + "dana" * 50,
        go_live="2026-09-28",
        metrics=tuple(
            MetricLine(f"metric_{i:03d}", f"metric_{i:03d} 14 → 9 min (−36%, better) " + "y" * 100, "better")
            for i in range(metrics)
        ),
        eval_line="91.3% on 150 cases, bar 95%, " + "v" * 3000,
        path_line="☐ integration, ☑ monitoring, ☐ rollback",
        next_steps=tuple(f"Step {i}: " + "z" * 500 for i in range(steps)),
    )


def test_gap_card_has_markers_metrics_eval_and_buttons() -> None:
    reply = Reply(card=card(), actions=(Action("History", command="history support-drafts"),))
    blocks = reply_blocks(reply)
    assert_valid_blocks(blocks)
    text = json.dumps(blocks, ensure_ascii=False)
    for mark in ("✅", "⚠️", "❌", "Latest eval", "Production path", "Next steps", "metric_000 14 → 9 min"):
        assert mark in text
    assert blocks[0]["type"] == "header"
    assert blocks[-1]["type"] == "actions"
    assert blocks[-1]["elements"][0]["value"] == "history support-drafts"


def test_long_names_are_clipped_not_rejected() -> None:
    reply = Reply(text=LONG * 10, card=card(name=LONG), lines=(LONG * 10,) * 30, actions=(Action(LONG, command="x"),))
    blocks = reply_blocks(reply)
    assert_valid_blocks(blocks)
    assert blocks[1]["text"]["text"].endswith("…")  # the header
    assert len(message(reply)["text"]) <= 3000


def test_sixty_metrics_fit_in_one_message() -> None:
    blocks = reply_blocks(Reply(card=card(metrics=60)))
    assert_valid_blocks(blocks)
    assert sum(b["text"]["text"].count("metric_") for b in blocks if b["type"] == "section") == 60


def test_thousands_of_metrics_end_with_and_n_more() -> None:
    blocks = reply_blocks(Reply(card=card(metrics=5000), actions=(Action("History", command="history x"),)))
    assert_valid_blocks(blocks)
    notes = [b for b in blocks if b["type"] == "context" and "more metrics" in b["elements"][0]["text"]]
    assert len(notes) == 1
    shown = sum(b["text"]["text"].count("metric_") for b in blocks if b["type"] == "section")
    assert f"… and {5000 - shown} more metrics" in notes[0]["elements"][0]["text"]
    assert blocks[-1]["type"] == "actions"


def portfolio(n: int, more: int = 0) -> Portfolio:
    rows = tuple(
        PortfolioRow(
            f"pilot-{i:04d}", LONG if i % 7 == 0 else f"Pilot {i}", STATES, False, "@dana", "record a baseline"
        )
        for i in range(n)
    )
    return Portfolio(0, n + more, f"0 of {n + more} pilots ready to ship (0%)", rows, more)


def test_a_500_pilot_portfolio_stays_inside_50_blocks() -> None:
    blocks = reply_blocks(Reply(portfolio=portfolio(500)))
    assert_valid_blocks(blocks)
    assert json.dumps(blocks).count("*pilot-") == 500  # all fit when names are short
    blocks = reply_blocks(Reply(portfolio=portfolio(3000)))
    assert_valid_blocks(blocks)
    shown = json.dumps(blocks).count("*pilot-")
    assert f"… and {3000 - shown} more pilots" in json.dumps(blocks, ensure_ascii=False)


def test_portfolio_page_says_how_many_more() -> None:
    blocks = reply_blocks(Reply(portfolio=portfolio(25, more=475)))
    assert_valid_blocks(blocks)
    assert "… and 475 more" in json.dumps(blocks, ensure_ascii=False)


def test_help_fits() -> None:
    assert_valid_blocks(reply_blocks(help_reply()))


def test_history_series_and_error_tone() -> None:
    reply = Reply(
        text="bad <input> & more",
        tone=Tone.error,
        series=tuple(Series(f"m{i}", tuple(float(v) for v in range(200)), 5.0, "bar 95%", "%") for i in range(80)),
    )
    blocks = reply_blocks(reply)
    assert_valid_blocks(blocks)
    assert blocks[0]["text"]["text"] == "⛔ bad &lt;input&gt; &amp; more"


def test_mrkdwn_is_escaped() -> None:
    assert escape("<@U1> & <#C1>") == "&lt;@U1&gt; &amp; &lt;#C1&gt;"
    assert "&lt;script&gt;" in fallback_text(Reply(text="<script>"))


def test_open_checkin_intent_becomes_the_slack_checkin_button() -> None:
    reply = Reply(text="Weekly check-in", card=card(), actions=(checkin_action("support-drafts"),))
    blocks = reply_blocks(reply)
    assert_valid_blocks(blocks)
    button = blocks[-1]["elements"][0]
    assert (button["action_id"], button["value"]) == (ActionId.checkin_open, "support-drafts")
    assert button["style"] == "primary"


def form(n: int):  # type: ignore[no-untyped-def]
    return build_checkin_form("support-drafts", LONG, "2026-W48", [(f"m_{i}" * 6, "min", 9.0) for i in range(n)])


def test_checkin_modal_one_input_per_metric() -> None:
    view = checkin_modal(form(3), {"slug": "support-drafts"})
    assert_valid_view(view)
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b["element"]["type"] for b in inputs] == ["number_input"] * 4 + ["plain_text_input"]
    assert inputs[-1]["element"]["multiline"] is True
    assert inputs[-2]["optional"] is True and inputs[0]["optional"] is False


def test_checkin_modal_with_many_metrics_stays_inside_100_blocks() -> None:
    for n in (60, 150):
        view = checkin_modal(form(n), {"slug": "support-drafts", "channel": "D1", "ts": "1.2"})
        assert_valid_view(view)
        assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    assert "… and" in json.dumps(view, ensure_ascii=False)


def test_modal_errors_point_at_present_blocks_only() -> None:
    view = checkin_modal(form(2), {"slug": "x"})
    errors = modal_errors(view, {"m_0m_0m_0m_0m_0m_0": "Enter a number.", "gone": "Refused."})
    assert errors == {"f:m_0m_0m_0m_0m_0m_0": "Enter a number. Refused."}


# A code that needs doing, per gap, so every not-closed row has advice.
OPEN_CODE = {
    Gap.baseline: Reason.no_baseline,
    Gap.owner: Reason.missed_last,
    Gap.quality: Reason.no_eval,
    Gap.path: Reason.path_todo,
}


def entries(n: int, owner: str) -> list[PortfolioEntry]:
    out = []
    for i in range(n):
        pilot = Pilot(slug=f"p-{i:04d}", name=LONG if i % 50 == 0 else f"Pilot {i}", owner_platform="slack",
                      owner_id=owner if i % 3 == 0 else "UOTHER", owner_name="dana")  # fmt: skip
        results = tuple(GapResult(g, s, f"reason {g.value}", OPEN_CODE[g]) for g, s in zip(Gap, STATES, strict=True))
        out.append(PortfolioEntry(pilot, GapReport(pilot.slug, results)))
    return out


def test_app_home_with_500_pilots_stays_inside_100_blocks_and_puts_mine_first() -> None:
    view = home_view(home_replies(entries(500, "U1"), "slack", "U1"))
    assert_valid_view(view)
    assert "Your pilots: 167" in view["blocks"][0]["text"]["text"]
    text = json.dumps(view, ensure_ascii=False)
    assert "more of your pilots" in text and "… and 440 more" in text


def test_app_home_for_someone_without_pilots() -> None:
    view = home_view(home_replies(entries(3, "U1"), "slack", "UNOBODY"))
    assert_valid_view(view)
    assert "You own no pilots yet" in view["blocks"][0]["text"]["text"]
    assert_valid_view(home_view(home_replies([], "slack", "U1")))


def test_real_portfolio_builder_output_is_valid() -> None:
    reply = portfolio_reply(entries(500, "U1"))
    assert_valid_blocks(reply_blocks(reply))


def test_command_hints_escape_angle_brackets() -> None:
    # A raw `<slug>` in mrkdwn is read as a link/mention by Slack, even inside a code span.
    for reply in (portfolio_reply([]), Reply(portfolio=portfolio(2, more=3))):
        blocks = reply_blocks(reply)
        assert_valid_blocks(blocks)
        mrkdwn = [t["text"] for b in blocks for t in [b.get("text"), *b.get("elements", [])] if t and "text" in t]
        assert not any("<" in t or ">" in t for t in mrkdwn), mrkdwn
    assert "No pilots yet: `/pilot new &lt;slug&gt; &lt;name&gt;` registers one." in json.dumps(
        reply_blocks(portfolio_reply([])), ensure_ascii=False
    )
    more = json.dumps(reply_blocks(Reply(portfolio=portfolio(2, more=3))), ensure_ascii=False)
    assert "… and 3 more; `/pilot status &lt;slug&gt;` shows one pilot." in more

"""Teams end to end: Activity JSON as Teams sends it -> the running server -> a fake connector."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from adapters.server import build_web_app
from adapters.teams.app import TEAMS_NOTIFIER
from adapters.teams.notifier import TeamsNotifier
from bot.clock import FixedClock
from bot.core import Core, build_core
from bot.ports import Actor, Destination, MessageRef, Unreachable
from bot.schedule.messages import checkin_prompt, unreachable_sentence
from bot.views import error_reply
from storage.db import session_scope
from storage.models import ConversationRef, Measurement, Pilot
from tests.teams import payloads as p
from tests.teams.fake_connector import FakeConnector

DANA_ACTOR = Actor("teams", "aad-dana", "Dana Ops")


async def post(client: TestClient, activity: dict[str, Any], **headers: str) -> int:
    resp = await client.post("/api/messages", json=activity, headers=headers)
    return resp.status


def notifier_of(client: TestClient) -> TeamsNotifier:
    app = client.app
    assert app is not None
    return app[TEAMS_NOTIFIER]


def refs(core: Core) -> dict[str, dict[str, Any]]:
    with session_scope(core.engine) as s:
        return {r.key: r.reference for r in s.exec(select(ConversationRef).where(ConversationRef.platform == "teams"))}


def pilot(core: Core, slug: str) -> Pilot:
    with session_scope(core.engine) as s:
        row = s.exec(select(Pilot).where(Pilot.slug == slug)).one()
        return row


async def test_personal_chat_commands_reply_with_cards(client: TestClient, connector: FakeConnector) -> None:
    url = connector.url
    act = p.personal(url, "new support-drafts Support reply drafts")
    assert await post(client, act) in (200, 201)
    [call] = connector.sent()
    # A reply to the user's message, in their 1:1 chat, without a token (anonymous mode).
    assert call.conversation_id == p.PERSONAL_DANA
    assert call.reply_to_id == act["id"]
    assert call.authorization is None
    assert call.body["type"] == "message"
    assert call.body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert call.card["version"] == "1.5"
    assert "Registered **support-drafts**" in call.card_text
    assert "Registered" in call.card["fallbackText"]

    for text in ("status", "/pilot status", "pilot status", "PILOT   status"):
        connector.calls.clear()
        assert await post(client, p.personal(url, text)) in (200, 201)
        [call] = connector.sent()
        assert "0 of 1 pilot ready to ship" in call.card_text, text
        assert "support-drafts" in call.card_text


async def test_unknown_command_and_bad_input_get_one_sentence(client: TestClient, connector: FakeConnector) -> None:
    assert await post(client, p.personal(connector.url, "frobnicate")) in (200, 201)
    [call] = connector.sent()
    assert "I don't know the command **frobnicate**" in call.card_text
    assert "status" in call.card_text  # the help follows
    connector.calls.clear()
    assert await post(client, p.personal(connector.url, "eval nope 1,5 cases 10")) in (200, 201)
    [call] = connector.sent()
    assert call.card["body"][0]["color"] == "Attention"
    assert "Traceback" not in call.card_text


async def test_channel_mention_removes_bot_and_resolves_users(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    url = connector.url
    sam = {"id": "29:1sam", "name": "Sam Lee"}
    assert await post(client, p.channel(url, "<at>pilotbot</at> new legal-intake", [p.BOT])) in (200, 201)
    connector.calls.clear()
    act = p.channel(url, "<at>pilotbot</at> owner legal-intake <at>Sam Lee</at>", [p.BOT, sam])
    assert await post(client, act) in (200, 201)
    [lookup, call] = connector.calls
    # The mention entity carries only the 29: id; the roster gives the stable aadObjectId.
    assert lookup.method == "GET" and lookup.path.endswith("/members/29:1sam")
    assert call.conversation_id == act["conversation"]["id"]  # the reply goes into the thread
    assert "@Sam Lee now owns **legal-intake**" in call.card_text
    row = pilot(teams_core, "legal-intake")
    assert (row.owner_platform, row.owner_id, row.owner_name) == ("teams", "aad-sam", "Sam Lee")
    assert row.created_by == "teams:aad-dana"

    connector.calls.clear()
    assert await post(client, p.channel(url, "<at>pilotbot</at> status legal-intake", [p.BOT])) in (200, 201)
    [call] = connector.sent()
    assert "Legal intake (legal-intake)" in call.card_text
    # The channel and the sender are remembered: a post to the channel, a 1:1 to open later.
    stored = refs(teams_core)
    assert stored[f"channel:{p.CHANNEL}"]["conversation"]["id"] == p.CHANNEL
    assert stored["member:aad-dana"]["user"]["id"] == "29:1dana"
    assert "user:aad-dana" not in stored  # no 1:1 chat seen yet


async def test_channel_mention_of_a_channel_sets_escalation(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    url = connector.url
    ops = {"id": "19:ops0@thread.tacv2", "name": "AI (ops)"}
    await post(client, p.personal(url, "new doc-summaries"))
    act = p.channel(url, "<at>pilotbot</at> escalate doc-summaries <at>AI (ops)</at>", [p.BOT, ops])
    assert await post(client, act) in (200, 201)
    row = pilot(teams_core, "doc-summaries")
    assert (row.escalation_platform, row.escalation_channel_id) == ("teams", "19:ops0@thread.tacv2")
    assert row.escalation_channel_name == "AI (ops)"


async def _pilot_owned_by_dana(core: Core) -> None:
    router = core.router
    for text in (
        "new support-drafts Support drafts",
        "owner support-drafts <@aad-dana|Dana Ops>",
        "baseline support-drafts handle_time 14 min lower",
        "baseline support-drafts revision_rate 38% lower",
        "threshold support-drafts 90 min-cases 100",
        "eval support-drafts 95 cases 120",
    ):
        assert router.handle(text, DANA_ACTOR).ok, text


async def test_checkin_card_submission_records_measurements(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await _pilot_owned_by_dana(teams_core)
    value = {
        "action": "checkin_submit",
        "slug": "support-drafts",
        "field:handle_time": "9",  # a string, as Teams desktop sends it
        "field:revision_rate": 21,  # a number, as some clients send it
        "field:pb.eval_score": "",
        "field:pb.triage": "Two tickets escalated by hand.",
    }
    assert await post(client, p.card_submit(connector.url, value)) in (200, 201)
    [call] = connector.sent()
    assert "Check-in for **support-drafts** answered." in call.card_text
    assert "recorded 2 metric value(s)" in call.card_text
    with session_scope(teams_core.engine) as s:
        rows = s.exec(select(Measurement).where(Measurement.source == "checkin")).all()
        assert sorted(r.value for r in rows) == [9.0, 21.0]
        assert {r.recorded_by for r in rows} == {"teams:aad-dana"}


async def test_invalid_checkin_submission_says_what_to_fix(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await _pilot_owned_by_dana(teams_core)
    value = {
        "action": "checkin_submit",
        "slug": "support-drafts",
        "field:handle_time": "9,5",
        "field:revision_rate": "",
        "field:pb.eval_score": "140",
    }
    assert await post(client, p.card_submit(connector.url, value)) in (200, 201)
    [call] = connector.sent()
    text = call.card_text
    assert "Please fix the check-in:" in text
    assert "Use a decimal point, not a comma: 9.5." in text
    assert "Enter this week's revision\\_rate." in text  # markdown-escaped on the card
    assert "The eval score is a percentage between 0 and 100." in text
    # The same form comes back, ready to submit again.
    inputs = {b["id"]: b for b in call.card["body"] if b.get("type", "").startswith("Input.")}
    assert set(inputs) == {"field:handle_time", "field:revision_rate", "field:pb.eval_score", "field:pb.triage"}
    assert call.card["actions"][0]["data"]["action"] == "checkin_submit"
    assert call.card["actions"][0]["data"]["slug"] == "support-drafts"
    with session_scope(teams_core.engine) as s:
        assert s.exec(select(Measurement).where(Measurement.source == "checkin")).all() == []


async def test_submission_by_someone_else_is_refused(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await _pilot_owned_by_dana(teams_core)
    value = {"action": "checkin_submit", "slug": "support-drafts", "field:handle_time": 9, "field:revision_rate": 20}
    assert await post(client, p.card_submit(connector.url, value, sender=p.CAROL)) in (200, 201)
    [call] = connector.sent()
    assert "Only the owner of **support-drafts**" in call.card_text


async def test_install_stores_reference_and_proactive_checkin_goes_out(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await _pilot_owned_by_dana(teams_core)
    assert await post(client, p.installed_personal(connector.url)) in (200, 201)
    [welcome] = connector.sent()
    assert "pilotbot commands:" in welcome.card_text
    assert refs(teams_core)["user:aad-dana"]["conversation"]["id"] == p.PERSONAL_DANA
    connector.calls.clear()

    notifier = notifier_of(client)
    services = teams_core.services
    prompt = checkin_prompt(services.pilot_report("support-drafts"), services.checkin_form("support-drafts"))
    sent = await notifier.send(Destination.user("teams", "aad-dana", "Dana Ops"), prompt)
    [call] = connector.sent()
    assert call.path == f"/v3/conversations/{p.PERSONAL_DANA}/activities"  # a new message, not a reply
    assert sent == MessageRef("teams", p.PERSONAL_DANA, "reply-2")
    numbers = [b["id"] for b in call.card["body"] if b.get("type") == "Input.Number"]
    assert numbers == ["field:handle_time", "field:revision_rate", "field:pb.eval_score"]
    triage = [b for b in call.card["body"] if b.get("type") == "Input.Text"]
    assert triage and triage[0]["isMultiline"] is True
    assert call.card["actions"][0]["data"]["action"] == "checkin_submit"
    assert call.card["actions"][0]["data"]["slug"] == "support-drafts"
    assert call.body["summary"].startswith("Weekly check-in for Support drafts")


async def test_proactive_to_channel_and_to_a_member_seen_only_in_a_channel(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await post(client, p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT], sender=p.CAROL))
    connector.calls.clear()
    notifier = notifier_of(client)
    await notifier.send(Destination.channel("teams", p.CHANNEL, "General"), error_reply("ping"))
    [call] = connector.sent()
    assert call.path == f"/v3/conversations/{p.CHANNEL}/activities"
    connector.calls.clear()

    # Carol never opened a 1:1 chat: the notifier creates one, then posts into it and remembers it.
    out = await notifier.send(Destination.user("teams", "aad-carol", "Carol"), error_reply("ping"))
    create, call = connector.calls
    assert create.path == "/v3/conversations"
    assert create.body["members"] == [{"id": "29:1carol", "name": "Carol (CIO)"}]
    assert create.body["channelData"] == {"tenant": {"id": p.TENANT}} and create.body["isGroup"] is False
    assert call.path == f"/v3/conversations/{out.conversation}/activities"
    assert out.conversation.startswith("a:new-dm-")
    assert refs(teams_core)["user:aad-carol"]["conversation"]["id"] == out.conversation


async def test_no_reference_is_a_clear_error(client: TestClient, connector: FakeConnector, caplog: Any) -> None:
    notifier = notifier_of(client)
    with pytest.raises(Unreachable) as e:
        await notifier.send(Destination.user("teams", "aad-nobody", "Nobody"), error_reply("ping"))
    assert e.value.destination == Destination.user("teams", "aad-nobody")
    assert "must install the pilotbot app" in unreachable_sentence(e.value.destination)
    assert "no conversation reference for user aad-nobody" in caplog.text
    with pytest.raises(Unreachable):
        await notifier.send(Destination.channel("teams", "19:gone@thread.tacv2"), error_reply("x"))
    assert connector.calls == []


async def test_transport_errors_are_short(client: TestClient) -> None:
    resp = await client.post("/api/messages", data="not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/api/messages", data="x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    resp = await client.post("/api/messages", json={"text": "no type"})
    assert resp.status == 400


async def test_app_id_requires_a_token(core: Core, connector: FakeConnector) -> None:
    settings = core.settings.model_copy(
        update={
            "microsoft_app_id": "00000000-0000-4000-8000-0000000000b0",
            "microsoft_app_password": __import__("pydantic").SecretStr("not-a-real-secret"),
            "microsoft_app_tenant_id": p.TENANT,
            "microsoft_app_type": "SingleTenant",
        }
    )
    app = build_web_app(build_core(settings, core.clock, core.engine, migrate=False))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        resp = await c.post("/api/messages", json=p.personal(connector.url, "status"))
        assert resp.status == 401
        assert await resp.json() == {"error": "missing or invalid Bot Framework token"}
        resp = await c.post(
            "/api/messages", json=p.personal(connector.url, "status"), headers={"Authorization": "Bearer not-a-jwt"}
        )
        assert resp.status == 401
    assert connector.calls == []


async def test_no_app_id_and_no_anonymous_means_no_route(core: Core, connector: FakeConnector) -> None:
    app = build_web_app(core)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        resp = await c.post("/api/messages", json=p.personal(connector.url, "status"))
        assert resp.status == 404
        assert (await c.get("/healthz")).status == 200


def test_broken_teams_settings_stop_serve_with_one_sentence(core: Core) -> None:
    settings = core.settings.model_copy(update={"microsoft_app_id": "00000000-0000-4000-8000-0000000000b0"})
    with pytest.raises(SystemExit, match="MICROSOFT_APP_TENANT_ID is required when MICROSOFT_APP_TYPE is SingleTenant"):
        build_web_app(build_core(settings, core.clock, core.engine, migrate=False))


async def test_connector_refusing_the_reply_is_one_log_line(
    client: TestClient, connector: FakeConnector, caplog: Any
) -> None:
    connector.fail_with = 403
    assert await post(client, p.personal(connector.url, "status")) in (200, 201)
    assert len(connector.sent()) == 1  # no retry loop, no second "something went wrong" message
    assert "teams: could not send to" in caplog.text
    assert "Traceback" not in caplog.text


async def test_history_reply_carries_the_chart(client: TestClient, connector: FakeConnector, core: Core) -> None:
    await _pilot_owned_by_dana(core)
    for text in ("threshold support-drafts 90", "eval support-drafts 91 cases 120", "eval support-drafts 94 cases 120"):
        assert core.router.handle(text, DANA_ACTOR).ok, text
    act = p.personal(connector.url, "history support-drafts")
    assert await post(client, act) in (200, 201)
    # (the 4-point drop also sent Dana an eval alert through the scheduler: not the reply looked at here)
    [call] = [c for c in connector.sent() if c.reply_to_id == act["id"]]
    kinds = [a["contentType"] for a in call.body["attachments"]]
    assert kinds == ["application/vnd.microsoft.card.adaptive", "image/png"]
    import base64

    uri = call.body["attachments"][1]["contentUrl"]
    png = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(uri) < 100_000  # stays far below the Bot Framework message limits


async def test_owner_without_the_app_is_reported_to_the_escalation_channel(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    """The check-in cannot reach an owner who never installed the app: the channel is told, once."""
    from datetime import timedelta

    from bot.schedule.deliver import Delivery

    await post(client, p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT], sender=p.CAROL))
    r = teams_core.router
    for text in (
        "new legal-intake Legal intake",
        f"escalate legal-intake <#{p.CHANNEL}|General>",
        "owner legal-intake <@aad-nobody|Nora>",
    ):
        assert r.handle(text, Actor("teams", "aad-admin", "Admin")).ok, text
    connector.calls.clear()
    clock = teams_core.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=5))  # Monday 12:00: the first check-in (09:00) is due, grace not over
    delivery = Delivery(teams_core.engine, teams_core.settings, clock, {"teams": notifier_of(client)})
    await delivery.tick()  # the DM fails: no reference for Nora; the channel is told
    await delivery.tick()  # the channel message goes out; no repeat of it
    clock.advance(timedelta(minutes=5))
    await delivery.tick()
    posts = [c for c in connector.sent() if c.path == f"/v3/conversations/{p.CHANNEL}/activities"]
    assert len(posts) == 1
    assert "must install the pilotbot app" in posts[0].body["summary"]
    assert "legal-intake" in str(posts[0].card)


async def test_an_owner_stored_by_the_29_id_is_recognised_on_their_own_answers_and_changes(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    """The roster knows nobody called Tom (no aadObjectId anywhere): the owner is stored by `29:`.
    Tom's own activities carry both ids; his answers and changes are his."""
    url = connector.url
    tom = {"id": "29:1tom", "name": "Tom Field"}
    await _pilot_owned_by_dana(teams_core)
    act = p.channel(url, "<at>pilotbot</at> owner support-drafts <at>Tom Field</at>", [p.BOT, tom])
    assert await post(client, act) in (200, 201)
    assert pilot(teams_core, "support-drafts").owner_id == "29:1tom"

    connector.calls.clear()
    tom_sends = {**tom, "aadObjectId": "aad-tom"}
    value = {"action": "checkin_submit", "slug": "support-drafts", "field:handle_time": 9, "field:revision_rate": 20}
    assert await post(client, p.card_submit(url, value, sender=tom_sends)) in (200, 201)
    [call] = connector.sent()
    assert "answered" in call.card_text and "Only the owner" not in call.card_text
    with session_scope(teams_core.engine) as s:
        rows = s.exec(select(Measurement).where(Measurement.source == "checkin")).all()
        assert {r.recorded_by for r in rows} == {"teams:aad-tom"}

    connector.calls.clear()
    change = p.personal(url, "threshold support-drafts 92", sender=tom_sends, conv="a:1tom-personal")
    assert await post(client, change) in (200, 201)
    [call] = connector.sent()
    assert "Only the owner" not in call.card_text
    row = pilot(teams_core, "support-drafts")
    assert (row.owner_id, row.owner_name) == ("aad-tom", "Tom Field")  # one identity from now on

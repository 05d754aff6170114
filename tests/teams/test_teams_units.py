"""Pure translation tests: settings -> auth config, activity -> actor/text, reply -> card."""

from __future__ import annotations

import pytest
from botbuilder.schema import Activity
from pydantic import SecretStr

from adapters.teams import inbound
from adapters.teams.auth import TeamsConfigError, auth_config, teams_mode
from adapters.teams.render import md_escape, render_card
from bot.config import Settings
from bot.forms import build_checkin_form
from bot.replies import GapCard, Reply
from bot.views import help_reply, portfolio_reply
from tests.teams import payloads as p


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg, arg-type]


def test_auth_config_has_exactly_the_upper_case_names_botbuilder_reads() -> None:
    cfg = auth_config(
        settings(
            microsoft_app_id="app-1",
            microsoft_app_password=SecretStr("pw"),
            microsoft_app_tenant_id="t-1",
            microsoft_app_type="singletenant",
        )
    )
    assert (cfg.APP_ID, cfg.APP_PASSWORD, cfg.APP_TYPE, cfg.APP_TENANTID) == ("app-1", "pw", "SingleTenant", "t-1")
    assert not cfg.anonymous and cfg.bot_app_id == "app-1"
    assert {n for n in vars(cfg) if n.isupper()} == {"APP_ID", "APP_PASSWORD", "APP_TYPE", "APP_TENANTID"}


def test_auth_config_refuses_incomplete_settings_in_one_sentence() -> None:
    with pytest.raises(TeamsConfigError, match="MICROSOFT_APP_TENANT_ID is required"):
        auth_config(settings(microsoft_app_id="a", microsoft_app_password=SecretStr("pw")))
    with pytest.raises(TeamsConfigError, match="MICROSOFT_APP_PASSWORD is required"):
        auth_config(settings(microsoft_app_id="a", microsoft_app_tenant_id="t", microsoft_app_type="MultiTenant"))
    with pytest.raises(TeamsConfigError, match="MICROSOFT_APP_TYPE must be"):
        auth_config(settings(microsoft_app_id="a", microsoft_app_type="Global"))
    # Managed identity needs no password.
    msi = auth_config(settings(microsoft_app_id="a", microsoft_app_tenant_id="t", microsoft_app_type="UserAssignedMSI"))
    assert msi.APP_TYPE == "UserAssignedMSI"


def test_modes() -> None:
    assert teams_mode(settings()) == "off"
    assert teams_mode(settings(teams_allow_anonymous=True)) == "anonymous"
    assert teams_mode(settings(microsoft_app_id="a", teams_allow_anonymous=True)) == "auth"
    anon = auth_config(settings(teams_allow_anonymous=True))
    assert anon.anonymous and anon.APP_TYPE == "MultiTenant"  # botbuilder's auth-disabled path


def _activity(payload: dict[str, object]) -> Activity:
    return Activity().deserialize(payload)


def test_actor_prefers_aad_object_id() -> None:
    a = inbound.actor_of(_activity(p.personal("http://x/", "status")))
    assert (a.platform, a.user_id, a.display_name) == ("teams", "aad-dana", "Dana Ops")
    no_aad = p.personal("http://x/", "status", sender={"id": "29:1guest", "name": "Guest"})
    assert inbound.actor_of(_activity(no_aad)).user_id == "29:1guest"


@pytest.mark.parametrize(
    ("text", "mentioned", "expected"),
    [
        ("<at>pilotbot</at> status", [p.BOT], "status"),
        ("<at>pilotbot</at>&nbsp;status legal-intake\n", [p.BOT], "status legal-intake"),
        (
            "<at>pilotbot</at> owner x <at>Ann (QA)+</at>",
            [p.BOT, {"id": "29:1ann", "name": "Ann (QA)+"}],
            "owner x <@aad-ann|Ann (QA)+>",
        ),
        (
            "<at>pilotbot</at> escalate x <at>Ops|Team</at>",
            [p.BOT, {"id": "19:ops@thread.tacv2", "name": "Ops|Team"}],
            "escalate x <#19:ops@thread.tacv2|OpsTeam>",
        ),
        ("owner x <at>Bo</at>", [{"id": "29:1bo", "name": "Bo"}], "owner x <@29:1bo|Bo>"),
    ],
)
def test_command_text(text: str, mentioned: list[dict[str, str]], expected: str) -> None:
    act = _activity(p.channel("http://x/", text, mentioned))
    out, names = inbound.command_text(act, {"29:1ann": "aad-ann"})
    assert out == expected


def test_submission_values() -> None:
    act = _activity(p.card_submit("http://x/", {"action": "checkin_submit", "slug": "s", "field:a": 3}))
    value = inbound.submitted(act)
    assert value is not None and inbound.form_values(value) == {"a": 3}
    assert inbound.submitted(_activity(p.personal("http://x/", "status"))) is None


def test_card_is_schema_1_5_with_text_fallback() -> None:
    card = render_card(help_reply())
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert card["fallbackText"].startswith("pilotbot commands:")
    form = build_checkin_form("s", "S", "2026-W48", [("handle_time", "min", 9.0), ("rate", "%", None)])
    card = render_card(Reply(text="Weekly check-in", form=form))
    inputs = [b for b in card["body"] if b["type"].startswith("Input.")]
    assert [(i["type"], i["id"], i["isRequired"]) for i in inputs] == [
        ("Input.Number", "field:handle_time", True),
        ("Input.Number", "field:rate", True),
        ("Input.Number", "field:pb.eval_score", False),
        ("Input.Text", "field:pb.triage", False),
    ]
    assert card["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Submit check-in",
            "style": "positive",
            "data": {"action": "checkin_submit", "slug": "s", "period": "2026-W48"},
        }
    ]


def _card_texts(card: dict[str, object]) -> list[str]:
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("text", "title", "value") and isinstance(v, str):
                    out.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card["body"])
    return out


def test_commands_in_backticks_are_bold_not_literal_backticks() -> None:
    # TextBlock markdown has no code spans: a backtick would show as typed.
    reply = Reply(text="Registered `support-drafts`.", lines=("Next: `owner support-drafts @someone`.",))
    texts = _card_texts(render_card(reply))
    assert not any("`" in t for t in texts), texts
    assert "Registered **support-drafts**." in texts
    assert "Next: **owner support-drafts @someone**." in texts
    empty = _card_texts(render_card(portfolio_reply([])))
    assert "No pilots yet: **new <slug> <name>** registers one." in empty


def test_required_inputs_have_no_extra_star_in_the_label() -> None:
    # Teams marks an isRequired input with its own " *"; adding one to the label showed two.
    form = build_checkin_form("s", "S", "2026-W48", [("handle_time", "min", 9.0)])
    inputs = [b for b in render_card(Reply(form=form))["body"] if b["type"].startswith("Input.")]
    assert inputs[0]["isRequired"] and inputs[0]["label"] == "handle_time (min)"
    assert not any(str(i["label"]).endswith("*") for i in inputs)


def test_pilot_name_is_not_teams_markdown() -> None:
    name = "*Launch* _now_ [win](https://evil.example) ~x~"
    card = GapCard(slug="launch", name=name, stage="pilot", ready=False, gaps=())
    [header, *_] = _card_texts(render_card(Reply(card=card)))
    assert header == r"\*Launch\* \_now\_ \[win\](https://evil.example) \~x\~ (launch)"
    assert md_escape("- a\n1. b\n2) c") == "\\- a\n1\\. b\n2\\) c"  # no lists either

"""Pure translation tests: settings -> auth config, activity -> actor/text, reply -> card."""

from __future__ import annotations

import pytest
from botbuilder.schema import Activity
from pydantic import SecretStr

from adapters.teams import inbound
from adapters.teams.auth import TeamsConfigError, auth_config, teams_mode
from adapters.teams.render import render_card
from bot.config import Settings
from bot.forms import build_checkin_form
from bot.replies import Reply
from bot.views import help_reply
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
        ("Input.Number", "field:eval_score", False),
        ("Input.Text", "field:triage", False),
    ]
    assert card["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Submit check-in",
            "style": "positive",
            "data": {"action": "checkin_submit", "slug": "s"},
        }
    ]

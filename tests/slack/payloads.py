"""Signed requests exactly as Slack sends them, and Block Kit validation with slack_sdk's models."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from adapters.slack.render import MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS


def sign(body: str, secret: str, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def slash_body(text: str, user_id: str = "U1", user_name: str = "dana", response_url: str = "") -> str:
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": "T0FAKE",
            "team_domain": "fake",
            "channel_id": "C1",
            "channel_name": "ai-pilots",
            "user_id": user_id,
            "user_name": user_name,
            "command": "/pilot",
            "text": text,
            "api_app_id": "A0FAKE",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "1337.42.abcd",
        }
    )


def interaction_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def block_action(
    action_id: str, value: str, user_id: str = "U1", response_url: str | None = None, channel: str = "DU1"
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": user_id, "username": "dana", "name": "dana", "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": channel},
        "trigger_id": "1337.42.trigger",
        "channel": {"id": channel, "name": "directmessage"},
        "message": {"type": "message", "ts": "1700000000.000001", "text": "check-in"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "text": {"type": "plain_text", "text": "x"},
                "action_ts": "1700000001.000000",
            }
        ],
    }
    if response_url:
        payload["response_url"] = response_url
    return payload


def view_submission(view: dict[str, Any], values: dict[str, str | None], user_id: str = "U1") -> dict[str, Any]:
    """The modal as Slack returns it on submit, with state.values filled from `values` (key -> text)."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        key = block["block_id"][2:]
        element = block["element"]
        state[block["block_id"]] = {
            element["action_id"]: {"type": element["type"], "value": values.get(key)},
        }
    return {
        "type": "view_submission",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": user_id, "username": "dana", "name": "dana", "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "trigger_id": "1337.42.submit",
        "view": {**view, "id": "V1", "team_id": "T0FAKE", "state": {"values": state}},
    }


def event_body(event: dict[str, Any]) -> str:
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": "T0FAKE",
            "api_app_id": "A0FAKE",
            "event": event,
            "type": "event_callback",
            "event_id": "Ev0001",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0FAKE", "user_id": "U0BOT", "is_bot": True}],
        }
    )


def assert_valid_blocks(blocks: list[dict[str, Any]], limit: int = MAX_MESSAGE_BLOCKS) -> None:
    """Every block parses into slack_sdk's model, passes its limit checks, and loses no field."""
    assert 0 < len(blocks) <= limit, f"{len(blocks)} blocks (limit {limit})"
    for raw in blocks:
        model = Block.parse(raw)
        assert model is not None, raw
        assert model.to_dict() == raw  # to_dict() validates lengths; equality: no unknown fields
        if raw["type"] == "actions":
            assert len(raw["elements"]) <= 25
            for el in raw["elements"]:
                assert len(el["text"]["text"]) <= 75 and len(el["action_id"]) <= 255
        if raw["type"] == "section" and "fields" in raw:
            assert len(raw["fields"]) <= 10


def assert_valid_view(view: dict[str, Any]) -> None:
    assert_valid_blocks(view["blocks"], MAX_VIEW_BLOCKS)
    model = View(**view)
    model.to_dict()  # validates title (24 chars), callback_id, private_metadata (3,000) and block count

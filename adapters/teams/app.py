"""The Teams surface: an activity handler on botbuilder's CloudAdapter at POST /api/messages.

A handler translates (inbound.py), calls the router or the check-in service, and renders
(render.py); every rule lives in bot/. Every inbound activity refreshes the stored
conversation references so the notifier can reach the user and the conversation later.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ActivityTypes, ChannelAccount
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.teams import inbound
from adapters.teams.auth import BotAuthConfig, auth_config, teams_mode
from adapters.teams.identity import AliasLearner
from adapters.teams.notifier import TeamsNotifier
from adapters.teams.openid import KeysUnavailable, StrictAuthentication, install
from adapters.teams.render import (
    KILL_REASON_INPUT,
    KILL_SUBMIT,
    card_activity,
    metric_fields,
    render_form_errors,
    render_form_page,
    reply_activity,
    with_image,
)
from bot import commands
from bot.charts import CHART_FILENAME, attach_chart
from bot.core import Core
from bot.errors import UserError
from bot.forms import FORM_PREFIX, CheckinForm, FormErrors, parse_checkin_answer
from bot.ports import Actor, Destination
from bot.replies import Reply, Tone
from bot.router import outcome_reply
from bot.schedule.messages import channel_unreachable_sentence
from bot.schedule.reach import ConversationRefs
from bot.views import INTERNAL_ERROR, error_reply, help_reply

log = logging.getLogger(__name__)

ROUTE = "/api/messages"
TEAMS_NOTIFIER: web.AppKey[TeamsNotifier] = web.AppKey("teams_notifier", TeamsNotifier)
# Inline images travel inside the activity; a lower resolution keeps a chart well under Teams' message size.
TEAMS_CHART_DPI = 60
FAILED = INTERNAL_ERROR


class PilotTeamsBot(ActivityHandler):
    def __init__(self, core: Core, refs: ConversationRefs) -> None:
        self.core = core
        self.refs = refs
        self.aliases = AliasLearner(core.engine)

    async def on_turn(self, turn_context: TurnContext) -> None:
        await self.remember(turn_context)
        await super().on_turn(turn_context)

    async def remember(self, context: TurnContext) -> None:
        """Store/refresh the references of this user and conversation (every activity, install included)."""
        try:
            keys = inbound.reference_keys(context.activity)
            await asyncio.to_thread(self.refs.save, inbound.PLATFORM, keys)
        except Exception:
            # Answering the user matters more than the reference; the next activity refreshes it.
            log.exception("teams: could not store the conversation reference")
        who = context.activity.from_property
        if who is not None and who.aad_object_id:
            try:  # before the command runs: an owner stored by the 29: id is this person (identity.py)
                await asyncio.to_thread(self.aliases.learn, who.id, who.aad_object_id)
            except Exception:
                log.exception("teams: could not re-key %s to its object id", who.id)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        actor = inbound.actor_of(activity)
        value = inbound.submitted(activity)
        if value is not None:
            await self.on_submit(turn_context, value)
            return
        resolved = await self.resolve_mentions(turn_context)
        text, names = inbound.command_text(activity, resolved)
        reply = await asyncio.to_thread(self.core.router.handle, text, actor, names.get)
        activity = reply_activity(reply)
        if reply.series:
            png = await asyncio.to_thread(attach_chart, reply, TEAMS_CHART_DPI)
            if png is not None:
                activity = with_image(activity, png, CHART_FILENAME)
        await turn_context.send_activity(activity)
        if reply.ok:
            await self.check_reach(turn_context, text)

    async def check_reach(self, context: TurnContext, text: str) -> None:
        """After an accepted `escalate <slug> <#channel>`: the bot can post to a Teams channel only
        through a conversation reference stored from an activity there (adapters/teams/notifier.py).
        Without one, the setter is told what to do now, and `status` says it until it is fixed."""
        cmd = commands.escalation_to_check(text)
        if cmd is None:
            return
        keys = (f"channel:{cmd.channel.id}", f"conversation:{cmd.channel.id}")
        if await asyncio.to_thread(self.refs.get, inbound.PLATFORM, *keys) is not None:
            return
        name = cmd.channel.name or cmd.channel.id
        sentence = channel_unreachable_sentence(inbound.PLATFORM, name, cmd.slug)
        await context.send_activity(reply_activity(Reply(text=sentence[:1].upper() + sentence[1:], tone=Tone.warning)))
        dest = Destination.channel(inbound.PLATFORM, cmd.channel.id, name)
        await asyncio.to_thread(self.core.services.escalation_unreachable, cmd.slug, dest, "no conversation reference")

    async def on_submit(self, context: TurnContext, value: dict[str, Any]) -> None:
        actor = inbound.actor_of(context.activity)
        action = value.get("action")
        if action == inbound.COMMAND_SUBMIT and isinstance(value.get("command"), str):
            reply = await asyncio.to_thread(self.core.router.handle, value["command"], actor, None)
            await context.send_activity(reply_activity(reply))
            return
        if action == KILL_SUBMIT and isinstance(value.get("slug"), str):  # the confirmed "Kill switch" card
            reason = str(value.get(KILL_REASON_INPUT) or value.get("default") or "").strip()
            command = f"kill {value['slug']} {reason}".strip()
            reply = await asyncio.to_thread(self.core.router.handle, command, actor, None)
            await context.send_activity(reply_activity(reply))
            return
        checkin_actions = (inbound.CHECKIN_SUBMIT, inbound.CHECKIN_NEXT, inbound.CHECKIN_OPEN)
        if action not in checkin_actions or not isinstance(value.get("slug"), str):
            await context.send_activity(reply_activity(error_reply("I did not understand that card; try `help`.")))
            return
        slug = value["slug"].lower()
        try:
            form = await asyncio.to_thread(self.core.services.checkin_form, slug)
        except UserError as err:
            await context.send_activity(reply_activity(error_reply(err.sentence)))
            return
        if action == inbound.CHECKIN_OPEN:
            await context.send_activity(card_activity(render_form_page(form), form.intro))
        elif action == inbound.CHECKIN_NEXT:
            await self.on_next_page(context, form, value)
        else:
            await self.on_checkin_submit(context, actor, form, value)

    async def on_next_page(self, context: TurnContext, form: CheckinForm, value: dict[str, Any]) -> None:
        """One page of a long form: its fields are checked now, its values carried to the next page."""
        bounds = inbound.page_bounds(value)
        if bounds is None:
            await context.send_activity(card_activity(render_form_page(form), form.intro))
            return
        start, end = bounds
        period = value.get("period")
        form = dataclasses.replace(form, period=period) if isinstance(period, str) else form
        carry, page = inbound.carried(value), inbound.form_values(value)
        fields = metric_fields(form)[start:end]
        try:
            parse_checkin_answer(
                dataclasses.replace(form, fields=tuple(fields)), {f.key: page.get(f.key) for f in fields}
            )
        except FormErrors as e:
            await context.send_activity(card_activity(render_form_errors(form, page, e.errors, start, carry), str(e)))
            return
        carry = {**carry, **{f.key: page[f.key] for f in fields if f.key in page}}
        await context.send_activity(card_activity(render_form_page(form, end, carry), form.intro))

    async def on_checkin_submit(
        self, context: TurnContext, actor: Actor, form: CheckinForm, value: dict[str, Any]
    ) -> None:
        period = value.get("period") if isinstance(value.get("period"), str) else None
        page = inbound.form_values(value)
        raw = {**inbound.carried(value), **page}
        try:
            out = await asyncio.to_thread(self.core.services.answer_checkin, actor, form.slug, raw, period)
        except FormErrors as e:
            # The last page again (the earlier pages' values stay carried), with what to fix.
            start = max(0, len(metric_fields(form)) - sum(1 for k in page if not k.startswith(FORM_PREFIX)))
            form = dataclasses.replace(form, period=period) if period else form
            card_json = render_form_errors(form, raw, e.errors, start, inbound.carried(value))
            await context.send_activity(card_activity(card_json, str(e)))
            return
        except UserError as e:
            await context.send_activity(reply_activity(error_reply(e.sentence)))
            return
        await context.send_activity(reply_activity(outcome_reply(out)))

    async def resolve_mentions(self, context: TurnContext) -> dict[str, str]:
        """Mention `29:` ids -> aadObjectId, so an owner set by mention matches that person's Actor."""
        out: dict[str, str] = {}
        bot_id = context.activity.recipient.id if context.activity.recipient else None
        for m in inbound.mentions(context.activity):
            if m.id == bot_id or m.is_channel or m.aad_object_id:
                continue
            ref = await asyncio.to_thread(self.refs.get, inbound.PLATFORM, f"user:{m.id}", f"member:{m.id}")
            aad = ((ref or {}).get("user") or {}).get("aadObjectId")
            if not aad:
                try:
                    member = await TeamsInfo.get_member(context, m.id)
                    aad = member.aad_object_id if member else None
                except Exception as e:  # the roster lookup is a convenience; the 29: id still works
                    log.info("teams: could not look up member %s: %s", m.id, e)
            if aad:
                out[m.id] = aad
        return out

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: TurnContext) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(m.id == bot_id for m in members_added):
            await turn_context.send_activity(reply_activity(help_reply()))


# The synthetic events botbuilder runs a proactive turn on (continue_conversation, create_conversation).
PROACTIVE_EVENTS = frozenset({"ContinueConversation", "CreateConversation"})


def is_proactive(context: TurnContext) -> bool:
    """A turn the bot started itself (no inbound activity from Teams behind it)."""
    activity = context.activity
    return activity is not None and activity.type == ActivityTypes.event and activity.name in PROACTIVE_EVENTS


def build_adapter(config: BotAuthConfig) -> CloudAdapter:
    install()  # signing keys fetched with aiohttp and a timeout, not requests on the event loop
    adapter = CloudAdapter(StrictAuthentication(config))

    async def on_error(context: TurnContext, error: Exception) -> None:
        if is_proactive(context):
            # A check-in, reminder or alert (adapters/teams/notifier.py): the outbox must see the
            # connector's refusal, keep the message pending and retry it; swallowed here, a 403/429/503
            # would be recorded as sent. Nobody is in this turn to tell, so nothing is sent either.
            raise error
        if isinstance(error, ClientRequestError | HttpOperationError):
            # The connector (serviceUrl) did not take our reply: one line, not a requests traceback.
            log.warning("teams: could not send to %s: %s", context.activity.service_url, str(error)[:300])
            return
        log.error("teams: turn failed", exc_info=error)
        try:
            await context.send_activity(reply_activity(error_reply(FAILED)))
        except Exception as e:
            log.warning("teams: could not report the failure to the user: %s", str(e)[:300])

    adapter.on_turn_error = on_error
    return adapter


def make_handler(adapter: CloudAdapter, bot: PilotTeamsBot) -> Any:
    async def messages(request: web.Request) -> web.StreamResponse:
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.json_response({"error": "expected an application/json Bot Framework activity"}, status=415)
        try:
            response = await adapter.process(request, bot)
        except (web.HTTPUnauthorized, jwt.PyJWTError):
            # Every validation failure is a PermissionError (StrictAuthentication) -> HTTPUnauthorized.
            log.info("teams: refused a request without a valid Bot Framework token")
            return web.json_response({"error": "missing or invalid Bot Framework token"}, status=401)
        except KeysUnavailable as e:
            log.warning("teams: %s", e)
            return web.json_response({"error": "cannot verify the token right now"}, status=503)
        except aiohttp.ClientError:
            log.exception("teams: could not verify the token (OpenID metadata unreachable?)")
            return web.json_response({"error": "cannot verify the token right now"}, status=503)
        except web.HTTPException as e:
            return web.json_response({"error": e.reason}, status=e.status)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the body is not valid JSON"}, status=400)
        except Exception:
            log.exception("teams: request failed")
            return web.json_response({"error": "internal error"}, status=500)
        return response or web.Response(status=201)

    return messages


def mount(app: web.Application, core: Core) -> TeamsNotifier | None:
    """Adds POST /api/messages when Teams is configured (SPEC §6); returns the notifier, if any."""
    mode = teams_mode(core.settings)
    if mode == "off":
        log.info("teams: not mounted (set MICROSOFT_APP_ID, or TEAMS_ALLOW_ANONYMOUS=true for local testing)")
        return None
    config = auth_config(core.settings)
    if mode == "anonymous":
        log.warning(
            "teams: TEAMS_ALLOW_ANONYMOUS=true and no MICROSOFT_APP_ID: %s accepts UNAUTHENTICATED requests "
            "and replies without a token; use this only with the Bot Framework Emulator or tests",
            ROUTE,
        )
    adapter = build_adapter(config)
    refs = ConversationRefs(core.engine, core.clock)
    bot = PilotTeamsBot(core, refs)
    notifier = TeamsNotifier(adapter, refs, config)
    app[TEAMS_NOTIFIER] = notifier
    app.router.add_post(ROUTE, make_handler(adapter, bot))
    log.info("teams: %s mounted (%s)", ROUTE, "authenticated" if mode == "auth" else "anonymous")
    return notifier

"""Bolt AsyncApp listeners: translate the Slack payload, call the core, render Block Kit.

Every listener acks first (Slack's 3-second window); database work runs in a worker thread of
its lane (adapters/lanes.py: interactive handlers and one-pilot commands on the fast lane,
portfolio builds on the bulk lane) and Web API calls happen after the ack. The exception is the
modal submission, whose ack must carry the inline errors, so it runs the answer's checks (on the
fast lane, writing nothing) before acking and writes the answer after. A check-in form that
cannot open tells the user the `answer` command instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.lanes import Lanes
from adapters.slack.client import ResponseUrls, make_slack_client
from adapters.slack.inbound import (
    SHARE_TIP,
    NameCache,
    actor_from_command,
    actor_from_user,
    is_help,
    split_share,
    unescape,
)
from adapters.slack.manifest import COMMAND, EVENTS_PATH
from adapters.slack.notifier import CHANNEL_UNREACHABLE, SlackNotifier
from adapters.slack.render import (
    ActionId,
    checkin_modal,
    home_view,
    message,
    modal_errors,
    modal_values,
)
from adapters.slack.replay import TIMESTAMP_HEADER, ReplayGuard, timestamp_ok
from bot import commands
from bot.charts import CHART_FILENAME, attach_chart
from bot.core import Core
from bot.errors import UserError
from bot.forms import FormErrors
from bot.home import home_from_pages
from bot.ports import Actor, Destination
from bot.replies import Reply, Tone
from bot.router import outcome_reply
from bot.schedule.messages import channel_unreachable_sentence
from bot.services.checkin_answer import form_failed_reply
from bot.views import INTERNAL_ERROR, error_reply

log = logging.getLogger(__name__)


# How long a one-pilot command may run before the ack goes out without its answer: the ack then
# still reaches Slack well inside 1 s under load (its 3-second window is for the whole round trip).
ACK_BUDGET = 0.4

NOT_RECORDED = (
    "Your check-in for `{slug}` was not recorded: {why} Press *Report this week's numbers* again to resend it."
)


def is_portfolio_read(text: str) -> bool:
    """`status` without a slug reads every pilot: bulk lane. Anything unparsable is quick to refuse."""
    try:
        cmd = commands.parse(text)
    except Exception:
        return False
    return isinstance(cmd, commands.Status) and cmd.slug is None


def finish(reply: Reply, text: str, share: bool) -> tuple[Reply, str]:
    """The reply as posted, and whether it goes to the channel: only when shared and accepted."""
    if is_help(text):
        reply = dataclasses.replace(reply, lines=(*reply.lines, SHARE_TIP))
    return reply, "in_channel" if share and reply.ok else "ephemeral"


class SlackSurface:
    """The pieces the listeners share: the core, the Web API client, the name cache."""

    def __init__(self, core: Core, client: AsyncWebClient, responses: ResponseUrls) -> None:
        self.core = core
        self.client = client
        self.responses = responses
        self.names = NameCache(client)
        self.notifier = SlackNotifier(client)
        self.lanes = Lanes()

    async def run(self, text: str, actor: Actor) -> Reply:
        names = await self.names.resolve_mentions(text)
        lane = self.lanes.bulk if is_portfolio_read(text) else self.lanes.fast
        return await lane(self.core.router.handle, text, actor, names.get)

    async def send_chart(self, reply: Reply, channel: str) -> None:
        """A `history` reply's PNG chart, uploaded after its text answer (the sparkline is the fallback)."""
        png = await asyncio.to_thread(attach_chart, reply)
        if png is None:
            return
        try:
            await self.client.files_upload_v2(
                channel=channel, content=png, filename=CHART_FILENAME, title=reply.text.replace("`", "")[:200]
            )
        except (SlackApiError, SlackRequestError, aiohttp.ClientError) as e:
            log.warning("slack: chart upload to %s failed: %s", channel, str(e)[:300])

    async def tell(self, body: dict[str, Any], reply: Reply) -> None:
        """Answer an interaction privately: via response_url when there is one, else by DM."""
        if body.get("response_url"):
            await self.responses.send(
                body["response_url"], response_type="ephemeral", replace_original=False, **message(reply)
            )
        else:
            await self.notifier.post(await self.notifier.dm_channel(body["user"]["id"]), reply)

    async def check_reach(self, text: str, body: dict[str, Any]) -> None:
        """After an accepted `escalate <slug> <#channel>`: ask Slack whether the bot can post there
        (conversations.info; after the ack). A private channel it is not in cannot get escalations:
        the user who set it is told to invite the bot."""
        cmd = commands.escalation_to_check(text)
        if cmd is None:
            return
        name = cmd.channel.name or cmd.channel.id
        reason: str | None = None
        try:
            info = await self.client.conversations_info(channel=cmd.channel.id)
            channel = info.get("channel") or {}
            if channel.get("is_archived"):
                reason = "is_archived"
            elif channel.get("is_private") and not channel.get("is_member"):
                reason = "not_in_channel"
        except SlackApiError as e:
            error = str(e.response.get("error") or "")
            if error in CHANNEL_UNREACHABLE:
                reason = error
            else:
                log.info("slack: conversations.info %s: %s", cmd.channel.id, error)
        except (SlackRequestError, aiohttp.ClientError) as e:
            log.info("slack: could not check %s: %s", cmd.channel.id, str(e)[:200])
            return
        if reason is None:
            return
        sentence = channel_unreachable_sentence("slack", name, cmd.slug, reason)
        reply = Reply(text=sentence[0].upper() + sentence[1:], tone=Tone.warning)
        if body.get("response_url"):
            await self.responses.send(body["response_url"], response_type="ephemeral", **message(reply))
        else:
            await self.notifier.post(await self.notifier.dm_channel(str(body.get("user_id"))), reply)
        # `status` says it too until someone fixes it; the setter was just told, so no DM follows.
        dest = Destination.channel("slack", cmd.channel.id, name)
        await self.lanes.fast(self.core.services.escalation_unreachable, cmd.slug, dest, reason)

    async def confirm(self, user_id: str, channel: str | None, thread_ts: str | None, reply: Reply) -> None:
        """A check-in's confirmation, in the thread of the message its form was opened from; else in
        the user's DM. The form also opens from `/pilot status` replies, which Slack shows in channels
        the bot is not in (and ephemeral messages take no thread): the answer is already recorded
        then, so its confirmation must not be lost with the refused post."""
        if channel:
            try:
                await self.notifier.post(channel, reply, thread_ts=thread_ts)
                return
            except (SlackApiError, SlackRequestError, aiohttp.ClientError) as e:
                error = e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__
                log.info("slack: could not answer in %s (%s); sending a DM", channel, error)
        try:
            await self.notifier.post(await self.notifier.dm_channel(user_id), reply)
        except (SlackApiError, SlackRequestError, aiohttp.ClientError) as e:
            log.warning("slack: the check-in confirmation for %s was not delivered: %s", user_id, str(e)[:200])

    async def tell_private(self, body: dict[str, Any], reply: Reply) -> None:
        """Only the clicking user sees it: the response_url, else chat.postEphemeral in the
        message's channel, else a DM."""
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        if body.get("response_url") or not channel:
            await self.tell(body, reply)
            return
        try:
            await self.client.chat_postEphemeral(channel=channel, user=body["user"]["id"], **message(reply))
        except (SlackApiError, SlackRequestError, aiohttp.ClientError) as e:
            log.warning("slack: ephemeral to %s failed: %s; sending a DM", channel, str(e)[:200])
            await self.notifier.post(await self.notifier.dm_channel(body["user"]["id"]), reply)


def build_slack_app(core: Core, client: AsyncWebClient, responses: ResponseUrls | None = None) -> AsyncApp:
    """The Bolt app with every listener; `client` is the one Web API client (tests pass a fake URL).

    `responses` owns the aiohttp session for response_url posts: close it when the server stops.
    """
    secret = core.settings.slack_signing_secret
    app = AsyncApp(
        name="pilotbot",
        client=client,
        signing_secret=secret.get_secret_value() if secret else None,
        logger=logging.getLogger("slack_bolt"),
    )
    app.use(ReplayGuard())  # after Bolt's signature check: only genuine signatures are remembered
    surface = SlackSurface(core, client, responses or ResponseUrls())

    @app.command(COMMAND)
    async def pilot_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        async def chart(reply: Reply, response_type: str) -> None:
            if reply.series:
                # Files cannot be ephemeral: a private answer gets its chart in the user's DM.
                shared = response_type == "in_channel" and body.get("channel_id")
                await surface.send_chart(reply, shared or await surface.notifier.dm_channel(body["user_id"]))

        text, share = split_share(unescape(body.get("text") or ""))
        work = asyncio.ensure_future(surface.run(text, actor_from_command(body)))
        if not surface.names.needs_lookup(text) and not is_portfolio_read(text):
            # A one-pilot command takes milliseconds: answer in the ack itself (one round trip,
            # no response_url post). One that is slow (a loaded server) is acked empty after
            # ACK_BUDGET and answered through the response_url when it finishes. A portfolio
            # read, a users.info lookup (Web API) are acked at once: nothing waits before them.
            done, _ = await asyncio.wait({work}, timeout=ACK_BUDGET)
            if work in done:
                reply, response_type = finish(work.result(), text, share)
                await ack(response_type=response_type, **message(reply))
                await chart(reply, response_type)
                if reply.ok:
                    await surface.check_reach(text, body)
                return
        await ack()
        reply, response_type = finish(await work, text, share)
        if body.get("response_url"):
            await surface.responses.send(body["response_url"], response_type=response_type, **message(reply))
        else:  # not sent by Slack for slash commands, but never lose the answer
            await surface.notifier.post(await surface.notifier.dm_channel(body["user_id"]), reply)
        await chart(reply, response_type)
        if reply.ok:
            await surface.check_reach(text, body)

    @app.action(re.compile(rf"^{ActionId.run_command.value}:"))
    async def command_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        command = str(body["actions"][0].get("value") or "")
        reply = await surface.run(command, actor_from_user(body["user"]))
        await surface.tell(body, reply)
        if reply.series:
            await surface.send_chart(reply, await surface.notifier.dm_channel(body["user"]["id"]))

    @app.action(ActionId.kill_switch.value)  # Intent.KILL, confirmed in Slack's dialog; value = `kill <slug> <reason>`
    async def kill_switch(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        command = str(body["actions"][0].get("value") or "")
        if not command.startswith("kill "):
            command = "kill"  # never run anything else from this button: the grammar's usage answer
        await surface.tell(body, await surface.run(command, actor_from_user(body["user"])))

    @app.action(ActionId.checkin_open.value)  # Intent.OPEN_CHECKIN (render.INTENT_ACTION); value = slug
    async def checkin_open(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        slug = str(body["actions"][0].get("value") or "")
        try:
            form = await surface.lanes.fast(surface.core.services.checkin_form, slug)
        except UserError as e:
            await surface.tell(body, error_reply(e.sentence))
            return
        container = body.get("container") or {}
        meta = {"slug": slug, "period": form.period}
        if container.get("channel_id") and container.get("message_ts"):
            meta |= {"channel": container["channel_id"], "ts": container["message_ts"]}
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=checkin_modal(form, meta))
        except (SlackApiError, SlackRequestError, aiohttp.ClientError) as e:
            # An expired trigger (the click is > 3 s old) or a refused view: never silence.
            error = e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__
            log.warning("slack: views.open for %s failed: %s", slug, error)
            await surface.tell_private(body, form_failed_reply(form))

    @app.view(ActionId.checkin_submit.value)
    async def checkin_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        actor = actor_from_user(body["user"])
        slug, values = str(meta.get("slug", "")), modal_values(view)
        period = meta.get("period") if isinstance(meta.get("period"), str) else None
        services = surface.core.services
        # The ack carries the inline errors, so the checks run before it; the write (the answer,
        # its eval run, the rescoring: 20-30 statements) runs after it, so a busy process still
        # acks inside 1 s. What the write alone can still refuse (a race) is told in the same place as
        # the confirmation.
        try:
            await surface.lanes.fast(services.vet_checkin_answer, actor, slug, values, period)
        except FormErrors as e:
            await ack(response_action="errors", errors=modal_errors(view, e.errors))
            return
        except UserError as e:
            await ack(response_action="errors", errors=modal_errors(view, {"": e.sentence}))
            return
        except Exception:
            log.exception("check-in answer failed for %s", actor.ref)
            await ack(response_action="errors", errors=modal_errors(view, {"": INTERNAL_ERROR}))
            return
        await ack()  # closes the modal
        try:
            reply = outcome_reply(await surface.lanes.fast(services.answer_checkin, actor, slug, values, period))
        except FormErrors as e:
            reply = error_reply(NOT_RECORDED.format(slug=slug, why=" ".join(e.errors.values())))
        except UserError as e:
            reply = error_reply(NOT_RECORDED.format(slug=slug, why=e.sentence))
        except Exception:
            log.exception("check-in answer failed for %s after its ack", actor.ref)
            reply = error_reply(NOT_RECORDED.format(slug=slug, why=INTERNAL_ERROR))
        await surface.confirm(actor.user_id, meta.get("channel"), meta.get("ts"), reply)

    @app.event("app_home_opened")
    async def app_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        user = str(event["user"])
        mine, everyone, shipped = await surface.lanes.bulk(core.services.home_pages, f"slack:{user}")
        await client.views_publish(user_id=user, view=home_view(home_from_pages(mine, everyone, shipped)))

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("slack listener failed: %s", error, exc_info=error)

    return app


def events_handler(bolt: AsyncApp) -> Any:
    async def slack_events(request: web.Request) -> web.Response:
        if not timestamp_ok(request.headers.get(TIMESTAMP_HEADER)):
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_req = await to_bolt_request(request)
        bolt_resp = await bolt.async_dispatch(bolt_req)
        return await to_aiohttp_response(bolt_resp)

    return slack_events


def identity_prefetch(bolt: AsyncApp, client: AsyncWebClient) -> Any:
    """Bolt asks Slack who the bot is (`auth.test`) on the first request it handles, so that first
    request's ack waited a Web API round trip (2 s against a slow Slack, for every request that came
    in meanwhile). Ask once at start-up, in the background; until it answers, Bolt asks as before."""

    async def ctx(_: web.Application) -> Any:
        async def fetch() -> None:
            # Bolt has no public hook for this; its single-workspace authorization keeps the answer here.
            for mw in bolt._async_middleware_list:  # noqa: SLF001
                if isinstance(mw, AsyncSingleTeamAuthorization) and mw.auth_test_result is None:
                    try:
                        mw.auth_test_result = await client.auth_test()
                    except (SlackApiError, SlackRequestError, aiohttp.ClientError) as e:
                        log.warning("slack: auth.test at start-up failed (%s); the first request asks", e)

        task = asyncio.create_task(fetch())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return ctx


def mount_slack(app: web.Application, core: Core) -> None:
    """HTTP mode: POST /slack/events. With SLACK_APP_TOKEN: Socket Mode, started in the running loop."""
    client = make_slack_client(core.settings)
    responses = ResponseUrls()
    bolt = build_slack_app(core, client, responses)

    async def close_responses(_: web.Application) -> None:
        await responses.close()

    app.on_cleanup.append(close_responses)
    app.cleanup_ctx.append(identity_prefetch(bolt, client))
    app_token = core.settings.slack_app_token
    if not app_token:  # unset or empty (`SLACK_APP_TOKEN=` in .env): HTTP mode
        app.router.add_post(EVENTS_PATH, events_handler(bolt))
        log.info("Slack: listening on %s", EVENTS_PATH)
        return

    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bolt, app_token.get_secret_value())

    async def start_socket_mode(_: web.Application) -> None:
        await handler.connect_async()
        log.info("Slack: connected in Socket Mode")

    async def stop_socket_mode(_: web.Application) -> None:
        await handler.close_async()

    app.on_startup.append(start_socket_mode)
    app.on_cleanup.append(stop_socket_mode)

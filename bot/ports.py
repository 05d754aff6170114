"""Who acts and where messages go: the neutral types every surface translates into.

A chat adapter implements `Notifier` (one `send`) and registers it with `Notifiers`; the
scheduler (bot/schedule/deliver.py) only ever sees these types, never a platform's own ids
format, message dict or class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from bot.replies import Reply

DestinationKind = Literal["user", "channel"]


@dataclass(frozen=True)
class Actor:
    platform: str  # "slack" | "teams" | "console" | "api"
    user_id: str
    display_name: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def label(self) -> str:
        return self.display_name or self.user_id


@dataclass(frozen=True)
class Destination:
    """A user (direct message) or a channel on one platform.

    Stored as its `key` (`slack:user:U1`, `teams:channel:19:abc@thread.tacv2`), which `parse` reads
    back. `name` and `conversation` are hints, not identity: a display name for sentences, and a
    conversation already known to reach this user (Slack: last week's DM channel), which saves the
    notifier a lookup.
    """

    platform: str
    kind: DestinationKind
    id: str
    name: str | None = field(default=None, compare=False)
    conversation: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("user", "channel") or not self.platform or not self.id:
            raise ValueError(f"not a destination: {self.platform!r} {self.kind!r} {self.id!r}")

    @classmethod
    def user(cls, platform: str, user_id: str, name: str | None = None) -> Destination:
        return cls(platform, "user", user_id, name)

    @classmethod
    def channel(cls, platform: str, channel_id: str, name: str | None = None) -> Destination:
        return cls(platform, "channel", channel_id, name)

    @classmethod
    def parse(cls, key: str) -> Destination:
        platform, kind, ident = key.split(":", 2)
        if kind not in ("user", "channel"):
            raise ValueError(f"not a destination key: {key!r}")
        return cls(platform, "user" if kind == "user" else "channel", ident)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.kind}:{self.id}"

    @property
    def is_channel(self) -> bool:
        return self.kind == "channel"


@dataclass(frozen=True)
class MessageRef:
    """A message a notifier sent: its platform, the conversation it is in, and its id there
    (Slack: channel and ts; Teams: conversation id and activity id). Stored as `to_json()`."""

    platform: str
    conversation: str
    id: str

    def to_json(self) -> dict[str, str]:
        return {"platform": self.platform, "conversation": self.conversation, "id": self.id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> MessageRef | None:
        """Reads `to_json()` and the shapes stored before it (Slack `{channel, ts}`, Teams
        `{platform, conversation_id, activity_id}`); None for anything else."""
        if not data:
            return None
        if data.get("conversation") and data.get("id") and data.get("platform"):
            return cls(str(data["platform"]), str(data["conversation"]), str(data["id"]))
        if data.get("channel") and data.get("ts"):
            return cls("slack", str(data["channel"]), str(data["ts"]))
        if data.get("conversation_id") and data.get("platform"):
            return cls(str(data["platform"]), str(data["conversation_id"]), str(data.get("activity_id") or ""))
        return None


class Unreachable(Exception):
    """Nobody can be messaged at `destination` yet: the bot has never seen them there (e.g. a Teams
    user who never installed the app, a Teams channel it was never mentioned in, a private Slack
    channel it was not invited to). Raised by a notifier; bot/schedule/messages.py words it.
    `reason`: the platform's own answer (`not_in_channel`), for the log only."""

    def __init__(self, destination: Destination, reason: str | None = None) -> None:
        self.destination = destination
        self.reason = reason
        super().__init__(f"{destination.key}: {reason}" if reason else f"no conversation with {destination.key} yet")


class Throttled(Exception):
    """The platform asked every sender to wait (HTTP 429 + Retry-After) longer than one attempt
    waits: the message stays pending and is not tried again before `retry_after` seconds."""

    def __init__(self, retry_after: float, detail: str) -> None:
        self.retry_after = max(0.0, retry_after)
        super().__init__(detail)


class Notifier(Protocol):
    """Outbound messages; implemented by each chat adapter, used by the scheduler.

    `send` raises on failure (the caller retries later) and `Unreachable` when the destination
    cannot be reached at all yet. `in_reply_to` answers in that message's thread where the platform
    has threads (Slack); elsewhere the message is posted to the destination as a new one.
    """

    platform: str

    async def send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef: ...


class DeliveryCheck(Protocol):
    """Optional, per platform: was this message already delivered (by a process that died before
    recording it)? Closes the crash window for platforms that can be asked (Slack: the DM history)."""

    async def find_sent(self, dest: Destination, reply: Reply, since: datetime) -> MessageRef | None: ...


class Notifiers:
    """The notifiers of one process, one per platform, each registered by its surface."""

    def __init__(self) -> None:
        self._notifiers: dict[str, Notifier] = {}
        self._checks: dict[str, DeliveryCheck] = {}

    @classmethod
    def of(cls, notifiers: Notifiers | Mapping[str, Notifier]) -> Notifiers:
        if isinstance(notifiers, Notifiers):
            return notifiers
        out = cls()
        for notifier in notifiers.values():
            out.register(notifier)
        return out

    def register(self, notifier: Notifier, check: DeliveryCheck | None = None) -> None:
        if notifier.platform in self._notifiers:
            raise ValueError(f"a {notifier.platform} notifier is already registered")
        self._notifiers[notifier.platform] = notifier
        if check is not None:
            self._checks[notifier.platform] = check

    def get(self, platform: str) -> Notifier | None:
        return self._notifiers.get(platform)

    def check(self, platform: str) -> DeliveryCheck | None:
        return self._checks.get(platform)

    def __contains__(self, platform: object) -> bool:
        return platform in self._notifiers

    @property
    def platforms(self) -> list[str]:
        return sorted(self._notifiers)
